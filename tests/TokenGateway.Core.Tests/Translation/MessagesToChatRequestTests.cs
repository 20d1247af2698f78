using System.Text.Json.Nodes;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

public sealed class MessagesToChatRequestTests
{
    private static JsonObject Translate(string json, TranslationOptions? options = null)
    {
        var result = MessagesToChatRequest.Translate(JsonNode.Parse(json)!.AsObject(), options);
        Assert.True(result.Succeeded, result.ErrorMessage);
        return result.Body!;
    }

    private static void AssertJson(string expected, JsonNode? actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"expected {expected}\nactual   {actual?.ToJsonString()}");

    [Fact]
    public void Translate_SystemAndBlocks_BecomeSystemMessageAndParts()
    {
        var body = Translate("""
            {"model":"gpt-4o","max_tokens":512,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
             "messages":[{"role":"user","content":[
               {"type":"text","text":"What is this?"},
               {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},
               {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},
               {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0x"},"title":"a.pdf"}]}]}
            """);

        AssertJson("""
            {"model":"gpt-4o","messages":[
              {"role":"system","content":[{"type":"text","text":"Be brief."}]},
              {"role":"user","content":[
                {"type":"text","text":"What is this?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}},
                {"type":"image_url","image_url":{"url":"https://example.com/a.png"}},
                {"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0x","filename":"a.pdf"}}]}],
             "max_completion_tokens":512}
            """, body);
    }

    [Fact]
    public void Translate_ToolUseAndResults_BecomeToolCallsAndToolMessagesInOrder()
    {
        var body = Translate("""
            {"model":"gpt-4o","max_tokens":100,"messages":[
              {"role":"user","content":"Weather?"},
              {"role":"assistant","content":[
                {"type":"thinking","thinking":"hmm","signature":"sig"},
                {"type":"text","text":"Checking."},
                {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},
                {"type":"tool_use","id":"toolu_2","name":"get_weather","input":{"city":"Rome"}}]},
              {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},
                {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"24C"}],"is_error":false},
                {"type":"text","text":"Which is warmer?"}]}]}
            """);

        AssertJson("""
            [{"role":"user","content":"Weather?"},
             {"role":"assistant","content":"Checking.","tool_calls":[
               {"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
               {"id":"toolu_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
             {"role":"tool","tool_call_id":"toolu_1","content":"18C"},
             {"role":"tool","tool_call_id":"toolu_2","content":[{"type":"text","text":"24C"}]},
             {"role":"user","content":[{"type":"text","text":"Which is warmer?"}]}]
            """, body["messages"]);
    }

    [Theory]
    [InlineData("""{"type":"auto"}""", "\"auto\"", null)]
    [InlineData("""{"type":"any"}""", "\"required\"", null)]
    [InlineData("""{"type":"none"}""", "\"none\"", null)]
    [InlineData("""{"type":"tool","name":"f"}""", """{"type":"function","function":{"name":"f"}}""", null)]
    [InlineData("""{"type":"any","disable_parallel_tool_use":true}""", "\"required\"", false)]
    public void Translate_ToolChoice_MapsEachForm(string choice, string expected, bool? parallel)
    {
        var request = JsonNode.Parse("""{"model":"m","max_tokens":10,"messages":[],"tools":[{"name":"f","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}]}""")!.AsObject();
        request["tool_choice"] = JsonNode.Parse(choice);

        var body = MessagesToChatRequest.Translate(request).Body!;

        AssertJson(expected, body["tool_choice"]);
        AssertJson("""[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]""", body["tools"]);
        Assert.Equal(parallel, body["parallel_tool_calls"] is null ? null : (bool)body["parallel_tool_calls"]!);
    }

    [Fact]
    public void Translate_OptionsStreamThinkingFormatUser_AreMapped()
    {
        var body = Translate("""
            {"model":"o4-mini","max_tokens":20000,"messages":[{"role":"user","content":"x"}],"stop_sequences":["END"],
             "temperature":1,"top_p":0.5,"stream":true,"metadata":{"user_id":"u-1"},"thinking":{"type":"enabled","budget_tokens":8192},
             "output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}}
            """, new TranslationOptions { OpenAIMaxTokensField = "max_tokens" });

        Assert.Equal(20000, (int)body["max_tokens"]!);
        AssertJson("""["END"]""", body["stop"]);
        AssertJson("""{"include_usage":true}""", body["stream_options"]);
        Assert.Equal("u-1", (string)body["user"]!);
        Assert.Equal("medium", (string)body["reasoning_effort"]!);
        AssertJson("""{"type":"json_schema","json_schema":{"name":"response","schema":{"type":"object"},"strict":true}}""", body["response_format"]);
    }

    [Fact]
    public void Translate_TopKServerToolsAndUnknownBlocks_AreRefusedByPath()
    {
        var result = MessagesToChatRequest.Translate(JsonNode.Parse("""
            {"model":"m","max_tokens":10,"top_k":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],
             "messages":[{"role":"user","content":[{"type":"search_result","source":"x","title":"t","content":[]}]}]}
            """)!.AsObject());

        Assert.False(result.Succeeded);
        Assert.Equal(["top_k", "tools[0]", "messages[0].content[0]"], result.Refused.Select(r => r.Path));
    }

    [Theory]
    [InlineData(1024, "low")]
    [InlineData(2048, "low")]
    [InlineData(4096, "medium")]
    [InlineData(8192, "medium")]
    [InlineData(16384, "high")]
    [InlineData(64000, "high")]
    public void EffortForThinkingBudget_FollowsTheDocumentedTable(int budget, string effort)
    {
        Assert.Equal(effort, DialectMappings.EffortForThinkingBudget(budget));
    }

    [Theory]
    [InlineData("low")]
    [InlineData("medium")]
    [InlineData("high")]
    public void EffortTable_RoundTripsTheThreeCommonLevels(string effort)
    {
        Assert.Equal(effort, DialectMappings.EffortForThinkingBudget(DialectMappings.ThinkingBudgetByEffort[effort]));
    }
}
