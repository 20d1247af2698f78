using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Core.Tests.Optimization;

namespace TokenGateway.Core.Tests.StructuredOutput;

public sealed class SchemaDiscoveryTests
{
    internal const string Person = """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}""";

    private static SchemaDiscovery.Outcome Find(LlmDialect dialect, string json, out SchemaTarget? target, out string? error) =>
        SchemaDiscovery.Find(OptimizationTestKit.Parse(dialect, json), out target, out error);

    [Fact]
    public void Find_ChatResponseFormat_ReturnsSchemaNameAndStrict()
    {
        var outcome = Find(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":PERSON}}}""".Replace("PERSON", SchemaDiscoveryTests.Person, StringComparison.Ordinal), out var t, out _);

        Assert.Equal(SchemaDiscovery.Outcome.Found, outcome);
        Assert.Equal("person", t!.Name);
        Assert.True(t.Strict);
        Assert.Equal(SchemaCarrier.ResponseFormat, t.Carrier);
        Assert.Equal(SchemaSource.Request, t.Source);
    }

    [Fact]
    public void Find_ChatForcedFunction_ReturnsToolParameters()
    {
        var outcome = Find(LlmDialect.OpenAIChat, """
            {"model":"gpt-4o","messages":[],"tools":[{"type":"function","function":{"name":"other","parameters":{}}},{"type":"function","function":{"name":"person","parameters":PERSON}}],
             "tool_choice":{"type":"function","function":{"name":"person"}}}
            """.Replace("PERSON", SchemaDiscoveryTests.Person, StringComparison.Ordinal), out var t, out _);

        Assert.Equal(SchemaDiscovery.Outcome.Found, outcome);
        Assert.Equal(SchemaCarrier.Tool, t!.Carrier);
        Assert.Equal("person", t.Name);
        Assert.NotNull(t.Schema["properties"]?["age"]);
    }

    [Fact]
    public void Find_ResponsesTextFormatAndForcedTool_Found()
    {
        var format = Find(LlmDialect.OpenAIResponses, """{"model":"gpt-4o","input":"x","text":{"format":{"type":"json_schema","name":"p","schema":PERSON}}}""".Replace("PERSON", SchemaDiscoveryTests.Person, StringComparison.Ordinal), out var t1, out _);
        var tool = Find(LlmDialect.OpenAIResponses, """{"model":"gpt-4o","input":"x","tools":[{"type":"function","name":"p","parameters":PERSON}],"tool_choice":{"type":"function","name":"p"}}""".Replace("PERSON", SchemaDiscoveryTests.Person, StringComparison.Ordinal), out var t2, out _);

        Assert.Equal(SchemaDiscovery.Outcome.Found, format);
        Assert.Equal(SchemaCarrier.ResponseFormat, t1!.Carrier);
        Assert.Equal(SchemaDiscovery.Outcome.Found, tool);
        Assert.Equal(SchemaCarrier.Tool, t2!.Carrier);
    }

    [Fact]
    public void Find_AnthropicOutputFormatOutputConfigAndForcedTool_Found()
    {
        var a = Find(LlmDialect.AnthropicMessages, """{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"output_format":{"type":"json_schema","schema":PERSON}}""".Replace("PERSON", SchemaDiscoveryTests.Person, StringComparison.Ordinal), out _, out _);
        var b = Find(LlmDialect.AnthropicMessages, """{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"output_config":{"format":{"type":"json_schema","schema":PERSON}}}""".Replace("PERSON", SchemaDiscoveryTests.Person, StringComparison.Ordinal), out _, out _);
        var c = Find(LlmDialect.AnthropicMessages, """{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"tools":[{"name":"p","input_schema":PERSON}],"tool_choice":{"type":"tool","name":"p"}}""".Replace("PERSON", SchemaDiscoveryTests.Person, StringComparison.Ordinal), out var tool, out _);

        Assert.Equal(SchemaDiscovery.Outcome.Found, a);
        Assert.Equal(SchemaDiscovery.Outcome.Found, b);
        Assert.Equal(SchemaDiscovery.Outcome.Found, c);
        Assert.Equal(SchemaCarrier.Tool, tool!.Carrier);
    }

    [Fact]
    public void Find_NoSchemaOrAutoToolChoice_None()
    {
        var plain = Find(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[],"response_format":{"type":"json_object"}}""", out _, out _);
        var auto = Find(LlmDialect.AnthropicMessages, """{"model":"c","max_tokens":1,"messages":[],"tools":[{"name":"p","input_schema":{}}],"tool_choice":{"type":"auto"}}""", out _, out _);

        Assert.Equal(SchemaDiscovery.Outcome.None, plain);
        Assert.Equal(SchemaDiscovery.Outcome.None, auto);
    }

    [Fact]
    public void Find_JsonSchemaWithoutSchemaObject_Malformed()
    {
        var outcome = Find(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":"nope"}}}""", out _, out var error);

        Assert.Equal(SchemaDiscovery.Outcome.Malformed, outcome);
        Assert.Contains("response_format.json_schema.schema", error, StringComparison.Ordinal);
    }
}
