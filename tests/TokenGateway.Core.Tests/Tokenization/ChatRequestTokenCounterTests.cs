using System.Text;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tests.Infrastructure;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Tokenization;

[Collection(nameof(SerialCollection))]
public sealed class ChatRequestTokenCounterTests
{
    // The example conversation from the OpenAI cookbook "How to count tokens with tiktoken" (section 6).
    private const string CookbookMessages = """
        [
          {"role":"system","content":"You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
          {"role":"system","name":"example_user","content":"New synergies will help drive top-line growth."},
          {"role":"system","name":"example_assistant","content":"Things working well together will increase revenue."},
          {"role":"system","name":"example_user","content":"Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
          {"role":"system","name":"example_assistant","content":"Let's talk later when we're less busy about how to do better."},
          {"role":"user","content":"This late pivot means we don't have time to boil the ocean for the client deliverable."}
        ]
        """;

    // The function-calling example from the same cookbook (section 7).
    private const string CookbookToolsRequest = """
        {"model":"m","messages":[
          {"role":"system","content":"You are a helpful assistant that can answer to questions about the weather."},
          {"role":"user","content":"What's the weather like in San Francisco?"}],
         "tools":[{"type":"function","function":{"name":"get_current_weather","description":"Get the current weather in a given location",
           "parameters":{"type":"object","properties":{
             "location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},
             "unit":{"type":"string","description":"The unit of temperature to return","enum":["celsius","fahrenheit"]}},
           "required":["location"]}}}]}
        """;

    [Theory]
    [InlineData("cl100k_base", 129)] // gpt-3.5-turbo, gpt-4-0613, gpt-4: 129 prompt tokens reported by the API
    [InlineData("o200k_base", 124)]  // gpt-4o, gpt-4o-mini: 124
    public void CountInputTokens_CookbookMessages_MatchesPublishedApiCount(string encoding, int expected)
    {
        var request = Parse(LlmDialect.OpenAIChat, $$"""{"model":"m","messages":{{CookbookMessages}}}""");

        var count = CreateSut().CountInputTokens(request, Card(encoding));

        Assert.Equal(expected, count);
    }

    [Theory]
    [InlineData("cl100k_base", 105)] // gpt-3.5-turbo, gpt-4: 105 prompt tokens reported by the API
    [InlineData("o200k_base", 101)]  // gpt-4o, gpt-4o-mini: 101
    public void CountInputTokens_CookbookTools_MatchesPublishedApiCount(string encoding, int expected)
    {
        var request = Parse(LlmDialect.OpenAIChat, CookbookToolsRequest);

        var count = CreateSut().CountInputTokens(request, Card(encoding));

        Assert.Equal(expected, count);
    }

    [Fact]
    public void CountInputTokens_ContentPartsEqualString_SameCount()
    {
        var asString = Parse(LlmDialect.OpenAIChat, """{"model":"m","messages":[{"role":"user","content":"Hello there, how are you?"}]}""");
        var asParts = Parse(LlmDialect.OpenAIChat, """{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Hello there, how are you?"}]}]}""");
        var sut = CreateSut();

        Assert.Equal(sut.CountInputTokens(asString, Card()), sut.CountInputTokens(asParts, Card()));
    }

    [Fact]
    public void CountInputTokens_Images_AddDocumentedFixedEstimate()
    {
        var text = Parse(LlmDialect.OpenAIChat, """{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"}]}]}""");
        var low = Parse(LlmDialect.OpenAIChat, """{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]}]}""");
        var high = Parse(LlmDialect.OpenAIChat, """{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}""");
        var sut = CreateSut();
        var baseline = sut.CountInputTokens(text, Card());

        Assert.Equal(baseline + ChatRequestTokenCounter.OpenAIImageLowDetailTokens, sut.CountInputTokens(low, Card()));
        Assert.Equal(baseline + ChatRequestTokenCounter.OpenAIImageHighDetailTokens, sut.CountInputTokens(high, Card()));
    }

    [Fact]
    public void CountInputTokens_AssistantToolCallAndToolResult_CountsNameArgumentsAndOutput()
    {
        var tokenizer = TiktokenTokenizerRegistry.Shared;
        var request = Parse(LlmDialect.OpenAIChat, """
            {"model":"m","messages":[
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"18 degrees and sunny"}]}
            """);

        var count = CreateSut().CountInputTokens(request, Card());

        var expected = 3 + tokenizer.Count("o200k_base", "assistant") + 3 + tokenizer.Count("o200k_base", "get_weather") + tokenizer.Count("o200k_base", "{\"city\":\"Paris\"}")
            + 3 + tokenizer.Count("o200k_base", "tool") + tokenizer.Count("o200k_base", "18 degrees and sunny")
            + 3;
        Assert.Equal(expected, count);
    }

    [Fact]
    public void CountInputTokens_EscapedString_CountsUnescapedText()
    {
        var request = Parse(LlmDialect.OpenAIEmbeddings, """{"model":"m","input":"line one\nline \"two\" \u00e9"}""");

        var count = CreateSut().CountInputTokens(request, Card());

        Assert.Equal(TiktokenTokenizerRegistry.Shared.Count("o200k_base", "line one\nline \"two\" é"), count);
    }

    [Fact]
    public void CountInputTokens_EmbeddingsForms_NoOverhead()
    {
        var sut = CreateSut();
        var hello = TiktokenTokenizerRegistry.Shared.Count("o200k_base", "hello world");

        Assert.Equal(hello, sut.CountInputTokens(Parse(LlmDialect.OpenAIEmbeddings, """{"model":"m","input":"hello world"}"""), Card()));
        Assert.Equal(2 * hello, sut.CountInputTokens(Parse(LlmDialect.OpenAIEmbeddings, """{"model":"m","input":["hello world","hello world"]}"""), Card()));
        Assert.Equal(5, sut.CountInputTokens(Parse(LlmDialect.OpenAIEmbeddings, """{"model":"m","input":[[1,2,3],[4,5]]}"""), Card()));
        Assert.Equal(3, sut.CountInputTokens(Parse(LlmDialect.OpenAIEmbeddings, """{"model":"m","input":[10,20,30]}"""), Card()));
    }

    [Fact]
    public void CountInputTokens_ResponsesStringInput_EqualsChatWithOneUserMessage()
    {
        var sut = CreateSut();
        var responses = Parse(LlmDialect.OpenAIResponses, """{"model":"m","input":"Tell me a joke about cats."}""");
        var chat = Parse(LlmDialect.OpenAIChat, """{"model":"m","messages":[{"role":"user","content":"Tell me a joke about cats."}]}""");

        Assert.Equal(sut.CountInputTokens(chat, Card()), sut.CountInputTokens(responses, Card()));
    }

    [Fact]
    public void CountInputTokens_ResponsesInstructionsAndItems_CountsEveryItem()
    {
        var sut = CreateSut();
        var bare = Parse(LlmDialect.OpenAIResponses, """{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"What's the weather in Paris?"}]}]}""");
        var full = Parse(LlmDialect.OpenAIResponses, """
            {"model":"m","instructions":"Be brief.","input":[
              {"role":"user","content":[{"type":"input_text","text":"What's the weather in Paris?"}]},
              {"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
              {"type":"function_call_output","call_id":"c1","output":"18C sunny"}]}
            """);

        Assert.True(sut.CountInputTokens(full, Card()) > sut.CountInputTokens(bare, Card()) + 10);
    }

    [Fact]
    public void CountInputTokens_Anthropic_ScalesTextOnceAndAddsOverhead()
    {
        var request = Parse(LlmDialect.AnthropicMessages, """{"model":"claude-sonnet-4-5","max_tokens":100,"system":"You are a scientist","messages":[{"role":"user","content":"Hello, Claude"}]}""");

        var count = CreateSut().CountInputTokens(request, Card("claude", "claude-sonnet-4-5"));

        var raw = TiktokenTokenizerRegistry.Shared.Get("o200k_base").CountTokens("You are a scientist")
            + TiktokenTokenizerRegistry.Shared.Get("o200k_base").CountTokens("Hello, Claude");
        Assert.Equal((int)Math.Ceiling(raw * TiktokenTokenizerRegistry.ClaudeCalibration) + 4 + 3, count);
    }

    [Theory]
    [InlineData("You are a scientist", "Hello, Claude", 14)] // Anthropic's count_tokens documentation example
    [InlineData(null, "Hello, world", 10)]                    // count_tokens answer quoted by the claude-token-count CLI
    public void CountInputTokens_AnthropicPublishedCounts_WithinTwoTokensAndNeverUnder(string? system, string user, int published)
    {
        var systemJson = system is null ? "" : $"\"system\":\"{system}\",";
        var request = Parse(LlmDialect.AnthropicCountTokens, $$"""{"model":"claude-sonnet-4-5",{{systemJson}}"messages":[{"role":"user","content":"{{user}}"}]}""");

        var count = CreateSut().CountInputTokens(request, Card("claude", "claude-sonnet-4-5"));

        Assert.InRange(count, published, published + 2);
    }

    [Fact]
    public void CountInputTokens_AnthropicTools_AddsToolSystemPrompt()
    {
        var sut = CreateSut();
        var card = Card("claude", "claude-sonnet-4-5");
        var plain = Parse(LlmDialect.AnthropicMessages, """{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"Weather in Paris?"}]}""");
        var withTools = Parse(LlmDialect.AnthropicMessages, """
            {"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"Weather in Paris?"}],
             "tools":[{"name":"get_weather","description":"Get the weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]}
            """);

        var delta = sut.CountInputTokens(withTools, card) - sut.CountInputTokens(plain, card);

        Assert.InRange(delta, 346 + 10, 346 + 40);
    }

    [Fact]
    public void CountInputTokens_AnthropicBlocks_CountsToolUseResultAndDocuments()
    {
        var sut = CreateSut();
        var card = Card("claude", "claude-sonnet-4-5");
        var request = Parse(LlmDialect.AnthropicCountTokens, """
            {"model":"claude-sonnet-4-5","system":[{"type":"text","text":"Be helpful."}],"messages":[
              {"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"The grass is green."}},{"type":"text","text":"What colour is the grass?"}]},
              {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"lookup","input":{"q":"grass"}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"green"}]},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}
            """);

        var count = sut.CountInputTokens(request, card);

        Assert.InRange(count, ChatRequestTokenCounter.AnthropicImageTokens + 30, ChatRequestTokenCounter.AnthropicImageTokens + 80);
    }

    [Fact]
    public void CountInputTokens_HundredMessages_AllocatesPerMessageNotPerByte()
    {
        var sb = new StringBuilder("""{"model":"m","messages":[""");
        for (var i = 0; i < 100; i++)
        {
            sb.Append(i == 0 ? "" : ",").Append("""{"role":"user","content":"The quick brown fox jumps over the lazy dog again and again, number """).Append(i).Append(".\"}");
        }

        var request = Parse(LlmDialect.OpenAIChat, sb.Append("]}").ToString());
        var sut = new ChatRequestTokenCounter(new TiktokenTokenizerRegistry());
        sut.CountInputTokens(request, Card()); // warm up

        // The least of a few runs: a GC or tiered-JIT event inside one run is not the counter's allocation.
        var allocated = long.MaxValue;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            sut.CountInputTokens(request, Card());
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        // O(messages), not O(bytes): the tokenizer's own per-call bookkeeping dominates (~100 B per CountTokens).
        Assert.True(allocated < 100 * 400, $"allocated {allocated} bytes for 100 messages ({request.OriginalBytes.Length}-byte body)");
    }

    private static ChatRequestTokenCounter CreateSut() => new(TiktokenTokenizerRegistry.Shared);

    private static ModelCard Card(string encoding = "o200k_base", string name = "m") => new() { Name = name, Provider = "openai", Tokenizer = encoding };

    private static LlmRequest Parse(LlmDialect dialect, string json)
    {
        Assert.True(LlmRequestParser.TryParse(dialect, Encoding.UTF8.GetBytes(json), out var request, out var error), error.Message);
        return request!;
    }
}
