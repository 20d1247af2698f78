using System.Text.Json.Nodes;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

public sealed class ChatToMessagesRequestTests
{
    private static JsonObject Translate(string json, TranslationOptions? options = null)
    {
        var result = ChatToMessagesRequest.Translate(JsonNode.Parse(json)!.AsObject(), options);
        Assert.True(result.Succeeded, result.ErrorMessage);
        return result.Body!;
    }

    private static RequestTranslation Refuse(string json)
    {
        var result = ChatToMessagesRequest.Translate(JsonNode.Parse(json)!.AsObject());
        Assert.False(result.Succeeded);
        Assert.Null(result.Body);
        return result;
    }

    private static void AssertJson(string expected, JsonNode? actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"expected {expected}\nactual   {actual?.ToJsonString()}");

    [Fact]
    public void Translate_SystemAndDeveloperMessages_BecomeTopLevelSystemBlocks()
    {
        var body = Translate("""
            {"model":"claude-sonnet-4-5","messages":[
              {"role":"system","content":"Be brief."},
              {"role":"developer","content":[{"type":"text","text":"Answer in French."}]},
              {"role":"user","content":"Hi"}]}
            """);

        AssertJson("""[{"type":"text","text":"Be brief."},{"type":"text","text":"Answer in French."}]""", body["system"]);
        AssertJson("""[{"role":"user","content":"Hi"}]""", body["messages"]);
    }

    [Fact]
    public void Translate_SingleStringSystem_StaysAString()
    {
        var body = Translate("""{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}""");

        AssertJson("\"Be brief.\"", body["system"]);
    }

    [Fact]
    public void Translate_SystemAfterConversationStarted_IsRefusedWithItsIndex()
    {
        var result = Refuse("""{"model":"m","messages":[{"role":"user","content":"Hi"},{"role":"system","content":"late"}]}""");

        Assert.Equal("messages[1]", result.Param);
        Assert.Contains("system prompt", result.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_NoOutputCap_UsesDocumentedDefault()
    {
        var body = Translate("""{"model":"m","messages":[{"role":"user","content":"Hi"}]}""", new TranslationOptions { DefaultMaxTokens = 1234 });

        Assert.Equal(1234, (int)body["max_tokens"]!);
        Assert.Equal(4096, TranslationOptions.Default.DefaultMaxTokens);
    }

    [Theory]
    [InlineData("""{"max_tokens":100}""", 100)]
    [InlineData("""{"max_completion_tokens":200}""", 200)]
    [InlineData("""{"max_tokens":100,"max_completion_tokens":200}""", 200)]
    [InlineData("""{"max_completion_tokens":200,"max_tokens":100}""", 200)]
    public void Translate_OutputCap_MaxCompletionTokensWins(string options, int expected)
    {
        var o = JsonNode.Parse(options)!.AsObject();
        o["model"] = "m";
        o["messages"] = JsonNode.Parse("""[{"role":"user","content":"Hi"}]""");

        var body = ChatToMessagesRequest.Translate(o).Body!;

        Assert.Equal(expected, (int)body["max_tokens"]!);
    }

    [Fact]
    public void Translate_ImagesByUrlAndBase64AndPdf_BecomeAnthropicSources()
    {
        var body = Translate("""
            {"model":"m","messages":[{"role":"user","content":[
              {"type":"text","text":"What is this?"},
              {"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"high"}},
              {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}},
              {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0x"}}]}]}
            """);

        AssertJson("""
            [{"role":"user","content":[
              {"type":"text","text":"What is this?"},
              {"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},
              {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},
              {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0x"},"title":"a.pdf"}]}]
            """, body["messages"]);
    }

    [Fact]
    public void Translate_AudioPart_IsRefusedWithItsPath()
    {
        var result = Refuse("""{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAA","format":"wav"}}]}]}""");

        Assert.Equal("messages[0].content[0]", result.Param);
    }

    [Fact]
    public void Translate_ParallelToolCallsAndResults_KeepIdsAndMergeResultsIntoOneUserTurn()
    {
        var body = Translate("""
            {"model":"m","messages":[
              {"role":"user","content":"Weather in Paris and Rome?"},
              {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"18C"},
              {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"24C"}]},
              {"role":"user","content":"Thanks. Which is warmer?"}]}
            """);

        AssertJson("""
            [{"role":"user","content":"Weather in Paris and Rome?"},
             {"role":"assistant","content":[
               {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},
               {"type":"tool_use","id":"call_2","name":"get_weather","input":{"city":"Rome"}}]},
             {"role":"user","content":[
               {"type":"tool_result","tool_use_id":"call_1","content":"18C"},
               {"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"24C"}]},
               {"type":"text","text":"Thanks. Which is warmer?"}]}]
            """, body["messages"]);
    }

    [Fact]
    public void Translate_ToolArgumentsNotJson_IsRefused()
    {
        var result = Refuse("""
            {"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[
              {"id":"c","type":"function","function":{"name":"f","arguments":"{not json"}}]}]}
            """);

        Assert.Equal("messages[0].tool_calls[0].function.arguments", result.Param);
    }

    [Fact]
    public void Translate_Tools_BecomeInputSchemas()
    {
        var body = Translate("""
            {"model":"m","messages":[{"role":"user","content":"x"}],"tools":[
              {"type":"function","function":{"name":"f","description":"does f","parameters":{"type":"object","properties":{"a":{"type":"string"}}},"strict":true}},
              {"type":"function","function":{"name":"g"}}]}
            """);

        AssertJson("""
            [{"name":"f","description":"does f","input_schema":{"type":"object","properties":{"a":{"type":"string"}}},"strict":true},
             {"name":"g","input_schema":{"type":"object","properties":{}}}]
            """, body["tools"]);
    }

    [Theory]
    [InlineData("\"auto\"", null, """{"type":"auto"}""")]
    [InlineData("\"none\"", null, """{"type":"none"}""")]
    [InlineData("\"required\"", null, """{"type":"any"}""")]
    [InlineData("""{"type":"function","function":{"name":"f"}}""", null, """{"type":"tool","name":"f"}""")]
    [InlineData("\"required\"", false, """{"type":"any","disable_parallel_tool_use":true}""")]
    [InlineData(null, false, """{"type":"auto","disable_parallel_tool_use":true}""")]
    public void Translate_ToolChoice_MapsEachForm(string? choice, bool? parallel, string expected)
    {
        var request = JsonNode.Parse("""{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}]}""")!.AsObject();
        if (choice is not null)
        {
            request["tool_choice"] = JsonNode.Parse(choice);
        }

        if (parallel is not null)
        {
            request["parallel_tool_calls"] = parallel;
        }

        var body = ChatToMessagesRequest.Translate(request).Body!;

        AssertJson(expected, body["tool_choice"]);
    }

    [Fact]
    public void Translate_SamplingStopStreamUser_AreMapped()
    {
        var body = Translate("""
            {"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0.2,"top_p":0.9,"stop":"END",
             "stream":true,"stream_options":{"include_usage":true},"user":"u-42","n":1,"logprobs":false,"presence_penalty":0,"seed":null}
            """);

        Assert.Equal(0.2, (double)body["temperature"]!);
        Assert.Equal(0.9, (double)body["top_p"]!);
        AssertJson("""["END"]""", body["stop_sequences"]);
        Assert.True((bool)body["stream"]!);
        AssertJson("""{"user_id":"u-42"}""", body["metadata"]);
        Assert.False(body.ContainsKey("stream_options"));
        Assert.True(ChatToMessagesRequest.Translate(JsonNode.Parse("""{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}""")!.AsObject()).ClientIncludeUsage);
    }

    [Fact]
    public void Translate_ParametersWithoutEquivalent_AreAllRefusedByName()
    {
        var result = Refuse("""
            {"model":"m","messages":[{"role":"user","content":"x"}],"n":2,"logprobs":true,"top_logprobs":3,
             "presence_penalty":0.5,"frequency_penalty":0.1,"logit_bias":{"50256":-100},"seed":7,"temperature":1.5,"some_new_field":1}
            """);

        Assert.Equal(
            ["n", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias", "seed", "temperature", "some_new_field"],
            result.Refused.Select(r => r.Path));
        Assert.Equal("n", result.Param);
        Assert.Contains("'seed'", result.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_JsonSchemaResponseFormat_BecomesOutputConfigFormat()
    {
        var body = Translate("""
            {"model":"m","messages":[{"role":"user","content":"x"}],
             "response_format":{"type":"json_schema","json_schema":{"name":"answer","strict":true,"schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}}}}
            """);

        AssertJson("""{"format":{"type":"json_schema","schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}}}""", body["output_config"]);
    }

    [Fact]
    public void Translate_JsonObjectResponseFormat_IsRefused()
    {
        Assert.Equal("response_format", Refuse("""{"model":"m","messages":[],"response_format":{"type":"json_object"}}""").Param);
    }

    [Theory]
    [InlineData("minimal", 1024)]
    [InlineData("low", 2048)]
    [InlineData("medium", 8192)]
    [InlineData("high", 16384)]
    public void Translate_ReasoningEffort_BecomesThinkingBudgetAboveDefaultCap(string effort, int budget)
    {
        var body = Translate($$"""{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"{{effort}}"}""");

        AssertJson($$"""{"type":"enabled","budget_tokens":{{budget}}}""", body["thinking"]);
        Assert.Equal(4096 + budget, (int)body["max_tokens"]!);
    }

    [Fact]
    public void Translate_ReasoningEffortNone_SendsNoThinking()
    {
        var body = Translate("""{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"none"}""");

        Assert.False(body.ContainsKey("thinking"));
    }

    [Fact]
    public void Translate_CapNotAboveThinkingBudget_IsRefused()
    {
        var result = Refuse("""{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_completion_tokens":1000}""");

        Assert.Equal("max_completion_tokens", result.Param);
        Assert.Contains("16384", result.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_DoesNotModifyTheSource()
    {
        const string json = """
            {"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"x"}],
             "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}
            """;
        var source = JsonNode.Parse(json)!.AsObject();

        ChatToMessagesRequest.Translate(source);

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), source));
    }
}
