using System.Text.Json.Nodes;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

public sealed class ResponsesToMessagesRequestTests
{
    private static void AssertJson(string expected, JsonNode? actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"expected {expected}\nactual   {actual?.ToJsonString()}");

    [Fact]
    public void Translate_StringInputWithInstructions_BecomesSystemAndUserMessage()
    {
        var result = ResponsesToMessagesRequest.Translate(JsonNode.Parse("""
            {"model":"claude-haiku-4-5","instructions":"Be brief.","input":"Hi","max_output_tokens":300,"temperature":0.5,"store":true,"stream":true}
            """)!.AsObject());

        Assert.True(result.Succeeded, result.ErrorMessage);
        Assert.True(result.Stream);
        AssertJson("""
            {"model":"claude-haiku-4-5","temperature":0.5,"stream":true,"system":"Be brief.",
             "messages":[{"role":"user","content":"Hi"}],"max_tokens":300}
            """, result.Body);
    }

    [Fact]
    public void Translate_FunctionCallsAndOutputs_BecomeToolUseAndMergedToolResults()
    {
        var result = ResponsesToMessagesRequest.Translate(JsonNode.Parse("""
            {"model":"m","input":[
              {"role":"developer","content":"Use tools."},
              {"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in Paris and Rome?"},{"type":"input_image","image_url":"https://example.com/map.png"}]},
              {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
              {"type":"function_call","call_id":"call_2","name":"get_weather","arguments":"{\"city\":\"Rome\"}"},
              {"type":"function_call_output","call_id":"call_1","output":"18C"},
              {"type":"function_call_output","call_id":"call_2","output":"24C"}],
             "tools":[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}],
             "tool_choice":{"type":"function","name":"get_weather"},"parallel_tool_calls":false}
            """)!.AsObject());

        Assert.True(result.Succeeded, result.ErrorMessage);
        var body = result.Body!;
        AssertJson("\"Use tools.\"", body["system"]);
        AssertJson("""
            [{"role":"user","content":[{"type":"text","text":"Weather in Paris and Rome?"},{"type":"image","source":{"type":"url","url":"https://example.com/map.png"}}]},
             {"role":"assistant","content":[
               {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},
               {"type":"tool_use","id":"call_2","name":"get_weather","input":{"city":"Rome"}}]},
             {"role":"user","content":[
               {"type":"tool_result","tool_use_id":"call_1","content":"18C"},
               {"type":"tool_result","tool_use_id":"call_2","content":"24C"}]}]
            """, body["messages"]);
        AssertJson("""[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}]""", body["tools"]);
        AssertJson("""{"type":"tool","name":"get_weather","disable_parallel_tool_use":true}""", body["tool_choice"]);
        Assert.Equal(4096, (int)body["max_tokens"]!);
    }

    [Fact]
    public void Translate_JsonSchemaFormatAndReasoning_BecomeOutputConfigAndThinking()
    {
        var result = ResponsesToMessagesRequest.Translate(JsonNode.Parse("""
            {"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"answer","strict":true,"schema":{"type":"object"}},"verbosity":"low"},
             "reasoning":{"effort":"low","summary":"auto"}}
            """)!.AsObject());

        Assert.True(result.Succeeded, result.ErrorMessage);
        AssertJson("""{"format":{"type":"json_schema","schema":{"type":"object"}}}""", result.Body!["output_config"]);
        AssertJson("""{"type":"enabled","budget_tokens":2048}""", result.Body!["thinking"]);
        Assert.Equal(4096 + 2048, (int)result.Body!["max_tokens"]!);
    }

    [Fact]
    public void Translate_StatefulAndBuiltInFeatures_AreRefusedByPath()
    {
        var result = ResponsesToMessagesRequest.Translate(JsonNode.Parse("""
            {"model":"m","previous_response_id":"resp_1","include":["reasoning.encrypted_content"],
             "input":[{"type":"reasoning","id":"rs_1","summary":[]},{"role":"user","content":"x"}],
             "tools":[{"type":"web_search"}],"truncation":"auto"}
            """)!.AsObject());

        Assert.False(result.Succeeded);
        Assert.Equal(["previous_response_id", "include", "tools[0]", "truncation", "input[0]"], result.Refused.Select(r => r.Path));
    }
}
