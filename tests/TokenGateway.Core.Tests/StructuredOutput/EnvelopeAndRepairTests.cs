using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Core.Tests.StructuredOutput;

public sealed class EnvelopeAndRepairTests
{
    private static SchemaTarget Target(SchemaCarrier carrier, string name = "person") =>
        new(name, new JsonObject(), carrier, Strict: true, SchemaSource.Request);

    [Fact]
    public void TryExtract_ChatContent_ReplaceRoundTrips()
    {
        var response = JsonNode.Parse("""{"choices":[{"message":{"role":"assistant","content":"{\"a\":1"}}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}""")!.AsObject();

        Assert.True(AnswerEnvelope.TryExtract(LlmDialect.OpenAIChat, Target(SchemaCarrier.ResponseFormat), response, out var answer));
        Assert.Equal("{\"a\":1", answer);
        Assert.True(AnswerEnvelope.TryReplace(LlmDialect.OpenAIChat, Target(SchemaCarrier.ResponseFormat), response, "{\"a\":1}"));
        Assert.Equal("{\"a\":1}", (string)response["choices"]![0]!["message"]!["content"]!);
    }

    [Fact]
    public void TryExtract_ChatRefusal_NoAnswer()
    {
        var response = JsonNode.Parse("""{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't."}}]}""")!.AsObject();

        Assert.False(AnswerEnvelope.TryExtract(LlmDialect.OpenAIChat, Target(SchemaCarrier.ResponseFormat), response, out _));
    }

    [Fact]
    public void TryExtract_ChatToolResponsesToolAndAnthropicTool_FindTheNamedCall()
    {
        var chat = JsonNode.Parse("""{"choices":[{"message":{"tool_calls":[{"id":"c","type":"function","function":{"name":"person","arguments":"{\"x\":1}"}}]}}]}""")!.AsObject();
        var responses = JsonNode.Parse("""{"output":[{"type":"reasoning"},{"type":"function_call","name":"person","arguments":"{\"x\":2}"}]}""")!.AsObject();
        var anthropic = JsonNode.Parse("""{"content":[{"type":"text","text":"thinking"},{"type":"tool_use","name":"person","input":{"x":3}}]}""")!.AsObject();

        Assert.True(AnswerEnvelope.TryExtract(LlmDialect.OpenAIChat, Target(SchemaCarrier.Tool), chat, out var a));
        Assert.True(AnswerEnvelope.TryExtract(LlmDialect.OpenAIResponses, Target(SchemaCarrier.Tool), responses, out var b));
        Assert.True(AnswerEnvelope.TryExtract(LlmDialect.AnthropicMessages, Target(SchemaCarrier.Tool), anthropic, out var c));
        Assert.Equal(("{\"x\":1}", "{\"x\":2}", "{\"x\":3}"), (a, b, c));

        AnswerEnvelope.TryReplace(LlmDialect.AnthropicMessages, Target(SchemaCarrier.Tool), anthropic, "{\"x\":4}");
        Assert.Equal(4, (int)anthropic["content"]![1]!["input"]!["x"]!);
    }

    [Fact]
    public void TryExtract_ResponsesOutputText_Found()
    {
        var response = JsonNode.Parse("""{"output":[{"type":"message","content":[{"type":"output_text","text":"{}"}]}]}""")!.AsObject();

        Assert.True(AnswerEnvelope.TryExtract(LlmDialect.OpenAIResponses, Target(SchemaCarrier.ResponseFormat), response, out var answer));
        Assert.Equal("{}", answer);
    }

    [Fact]
    public void AddUsage_SumsNumericFieldsIncludingNested()
    {
        var first = JsonNode.Parse("""{"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":2}}}""")!.AsObject();
        var repair = JsonNode.Parse("""{"usage":{"prompt_tokens":30,"completion_tokens":6,"total_tokens":36,"prompt_tokens_details":{"cached_tokens":1}}}""")!.AsObject();

        AnswerEnvelope.AddUsage(first, repair);

        Assert.Equal("""{"prompt_tokens":40,"completion_tokens":11,"total_tokens":51,"prompt_tokens_details":{"cached_tokens":3}}""", first["usage"]!.ToJsonString());
    }

    [Fact]
    public void Build_Chat_AppendsAssistantAnswerAndErrorTurnAndDropsStreaming()
    {
        var sent = JsonNode.Parse("""{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}""")!.AsObject();

        var body = RepairRequest.Build(LlmDialect.OpenAIChat, sent, "{\"age\":\"x\"}", [new SchemaError("/age", "Value is \"string\" but should be \"integer\"")]);

        var messages = body["messages"]!.AsArray();
        Assert.Equal(3, messages.Count);
        Assert.Equal("assistant", (string)messages[1]!["role"]!);
        Assert.Equal("{\"age\":\"x\"}", (string)messages[1]!["content"]!);
        Assert.Contains("- /age: Value is", (string)messages[2]!["content"]!, StringComparison.Ordinal);
        Assert.Null(body["stream"]);
        Assert.Null(body["stream_options"]);
        Assert.Single(sent["messages"]!.AsArray()); // the sent body is not modified
    }

    [Fact]
    public void Build_ResponsesStringInput_BecomesMessageList()
    {
        var sent = JsonNode.Parse("""{"model":"gpt-4o","input":"describe"}""")!.AsObject();

        var body = RepairRequest.Build(LlmDialect.OpenAIResponses, sent, "", [new SchemaError("", "bad")]);

        var input = body["input"]!.AsArray();
        Assert.Equal(["user", "assistant", "user"], input.Select(i => (string)i!["role"]!));
        Assert.Equal("(empty reply)", (string)input[1]!["content"]!);
    }

    [Fact]
    public void Feedback_ManyErrors_ListsAtMostEightAndCountsTheRest()
    {
        var errors = Enumerable.Range(0, 11).Select(i => new SchemaError($"/{i}", "bad")).ToList();

        var text = RepairRequest.Feedback(errors);

        Assert.Contains("- /7: bad", text, StringComparison.Ordinal);
        Assert.DoesNotContain("- /8: bad", text, StringComparison.Ordinal);
        Assert.Contains("and 3 more", text, StringComparison.Ordinal);
    }
}
