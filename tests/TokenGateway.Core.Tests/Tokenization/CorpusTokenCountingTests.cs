using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tests.Fixtures;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Tokenization;

/// <summary>Invariants of the counter over the real function-calling requests of the BFCL corpus.</summary>
public sealed class CorpusTokenCountingTests
{
    private static readonly ChatRequestTokenCounter _sut = new(TiktokenTokenizerRegistry.Shared);
    private static readonly ModelCard _gpt = new() { Name = "gpt-4o", Provider = "openai", Tokenizer = "o200k_base" };
    private static readonly ModelCard _claude = new() { Name = "claude-sonnet-4-5", Provider = "anthropic", Tokenizer = "claude" };

    [Fact]
    public void CountInputTokens_BfclLiveRequests_ResponsesEqualsChatAndToolsAlwaysAdd()
    {
        var records = ReadBfcl("BFCL_v4_live_simple.json");
        Assert.True(records.Count > 200, "corpus not found or truncated");

        foreach (var record in records)
        {
            var messages = (JsonArray)record["question"]![0]!;
            var functions = (JsonArray)record["function"]!;

            var chatTools = new JsonArray(functions.Select(f => (JsonNode)new JsonObject { ["type"] = "function", ["function"] = f!.DeepClone() }).ToArray());
            var chat = Count(LlmDialect.OpenAIChat, new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages.DeepClone(), ["tools"] = chatTools }, _gpt);
            var chatWithoutTools = Count(LlmDialect.OpenAIChat, new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages.DeepClone() }, _gpt);
            var responsesTools = new JsonArray(functions.Select(f =>
            {
                var flat = (JsonObject)f!.DeepClone();
                flat["type"] = "function";
                return (JsonNode)flat;
            }).ToArray());
            var responses = Count(LlmDialect.OpenAIResponses, new JsonObject { ["model"] = "gpt-4o", ["input"] = messages.DeepClone(), ["tools"] = responsesTools }, _gpt);

            var anthropicTools = new JsonArray(functions.Select(f => (JsonNode)new JsonObject
            {
                ["name"] = f!["name"]!.DeepClone(),
                ["description"] = f["description"]?.DeepClone(),
                ["input_schema"] = f["parameters"]!.DeepClone(),
            }).ToArray());
            var anthropic = Count(LlmDialect.AnthropicMessages, new JsonObject { ["model"] = "claude-sonnet-4-5", ["max_tokens"] = 100, ["messages"] = messages.DeepClone(), ["tools"] = anthropicTools }, _claude);

            Assert.Equal(chat, responses);
            Assert.True(chat > chatWithoutTools + 10, $"{record["id"]}: tools added only {chat - chatWithoutTools}");
            Assert.True(anthropic > 346 + chatWithoutTools, $"{record["id"]}: anthropic {anthropic}");
        }
    }

    [Fact]
    public void CountInputTokens_BfclMultiTurn_GrowsWithEveryTurn()
    {
        var records = ReadBfcl("BFCL_v4_multi_turn_base.json");
        Assert.NotEmpty(records);

        foreach (var record in records.Take(50))
        {
            var messages = new JsonArray();
            var previous = Count(LlmDialect.OpenAIChat, new JsonObject { ["model"] = "m", ["messages"] = messages.DeepClone() }, _gpt);
            foreach (var turn in (JsonArray)record["question"]!)
            {
                foreach (var message in (JsonArray)turn!)
                {
                    messages.Add(message!.DeepClone());
                }

                var current = Count(LlmDialect.OpenAIChat, new JsonObject { ["model"] = "m", ["messages"] = messages.DeepClone() }, _gpt);
                Assert.True(current > previous, $"{record["id"]}: {current} <= {previous}");
                previous = current;
            }
        }
    }

    private static int Count(LlmDialect dialect, JsonObject body, ModelCard card)
    {
        Assert.True(LlmRequestParser.TryParse(dialect, Encoding.UTF8.GetBytes(body.ToJsonString()), out var request, out var error), error.Message);
        return _sut.CountInputTokens(request!, card);
    }

    private static List<JsonObject> ReadBfcl(string file)
    {
        var path = Optimization.CorpusPaths.Corpus("bfcl", file);
        return File.ReadLines(path).Where(l => l.Length > 0).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();
    }
}
