using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Core.Tests.Optimization;

namespace TokenGateway.Core.Tests.StructuredOutput;

public sealed class PolicyAndEnforcementTests
{
    [Fact]
    public void FromJson_Null_Defaults()
    {
        var policy = StructuredOutputPolicy.FromJson(null, out var errors);

        Assert.Empty(errors);
        Assert.Equal(1, policy.MaxRepairs);
        Assert.Equal(SchemaFailureMode.Error, policy.OnFailure);
        Assert.Equal(SchemaStreamingMode.ValidateAtEnd, policy.Streaming);
        Assert.False(policy.DeriveMaxTokens);
    }

    [Fact]
    public void FromJson_AllFields_Parsed()
    {
        var policy = StructuredOutputPolicy.FromJson(JsonNode.Parse("""
            {"enabled":true,"maxRepairs":2,"onFailure":"passthrough","streaming":"buffer","schema":"invoice","schemaVersion":3,"deriveMaxTokens":true}
            """)!.AsObject(), out var errors);

        Assert.Empty(errors);
        Assert.Equal(new StructuredOutputPolicy
        {
            MaxRepairs = 2, OnFailure = SchemaFailureMode.Passthrough, Streaming = SchemaStreamingMode.Buffer, Schema = "invoice", SchemaVersion = 3, DeriveMaxTokens = true,
        }, policy);
    }

    [Fact]
    public void FromJson_BadValues_ReportedAndIgnored()
    {
        var policy = StructuredOutputPolicy.FromJson(JsonNode.Parse("""{"maxRepairs":9,"onFailure":"retry","streaming":1,"schema":"bad name","colour":"red"}""")!.AsObject(), out var errors);

        Assert.Equal(5, errors.Count);
        Assert.Equal(StructuredOutputPolicy.Default, policy);
    }

    [Theory]
    [InlineData("invoice", "invoice", null)]
    [InlineData("invoice@3", "invoice", 3)]
    [InlineData(" person.v2 ", "person.v2", null)]
    public void TryParseReference_Valid(string text, string name, int? version)
    {
        Assert.True(SchemaName.TryParseReference(text, out var n, out var v));
        Assert.Equal((name, version), (n, v));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a b")]
    [InlineData("x@0")]
    [InlineData("x@latest")]
    public void TryParseReference_Invalid(string text)
    {
        Assert.False(SchemaName.TryParseReference(text, out _, out _));
    }

    [Fact]
    public void Apply_RegistrySchemaOnNativeOpenAIModel_InsertsStrictResponseFormat()
    {
        var request = OptimizationTestKit.Parse(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}""");
        var schema = JsonNode.Parse("""{"type":"object","properties":{"a":{"type":"string"}}}""")!.AsObject();

        var enforced = SchemaEnforcement.Apply(request, OptimizationTestKit.Gpt4o, new SchemaTarget("inv.v1", schema, SchemaCarrier.ResponseFormat, true, SchemaSource.Header));

        Assert.True(request.IsModified);
        Assert.Equal(SchemaDelivery.Native, enforced.Delivery);
        var format = request.Body["response_format"]!["json_schema"]!;
        Assert.Equal("inv_v1", (string)format["name"]!);
        Assert.True((bool)format["strict"]!);
        Assert.False((bool)format["schema"]!["additionalProperties"]!);
    }

    [Fact]
    public void Apply_RequestStrictSchemaOutsideSubset_ConvertedInPlace()
    {
        var request = OptimizationTestKit.Parse(LlmDialect.OpenAIChat,
            """{"model":"gpt-4o","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"p","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}}}}}}""");
        SchemaDiscovery.Find(request, out var target, out _);

        var enforced = SchemaEnforcement.Apply(request, OptimizationTestKit.Gpt4o, target!);

        Assert.True(enforced.Strict);
        Assert.Equal("""["a"]""", request.Body["response_format"]!["json_schema"]!["schema"]!["required"]!.ToJsonString());
    }

    [Fact]
    public void Apply_RequestStrictSchemaAlreadyInSubset_BodyUntouched()
    {
        var request = OptimizationTestKit.Parse(LlmDialect.OpenAIChat,
            """{"model":"gpt-4o","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"p","strict":true,"schema":PERSON}}}""".Replace("PERSON", SchemaDiscoveryTests.Person, StringComparison.Ordinal));
        SchemaDiscovery.Find(request, out var target, out _);

        SchemaEnforcement.Apply(request, OptimizationTestKit.Gpt4o, target!);

        Assert.False(request.IsModified);
    }

    [Fact]
    public void Apply_ModelWithoutNativeSupport_RemovesFormatAndAddsInstruction()
    {
        var request = OptimizationTestKit.Parse(LlmDialect.AnthropicMessages,
            """{"model":"claude-sonnet-4-5","max_tokens":100,"system":"Be brief.","messages":[{"role":"user","content":"x"}],"output_format":{"type":"json_schema","schema":PERSON}}""".Replace("PERSON", SchemaDiscoveryTests.Person, StringComparison.Ordinal));
        SchemaDiscovery.Find(request, out var target, out _);
        var card = OptimizationTestKit.Claude with { SupportsStructuredOutput = false };

        var enforced = SchemaEnforcement.Apply(request, card, target!);

        Assert.Equal(SchemaDelivery.Instruction, enforced.Delivery);
        Assert.Null(request.Body["output_format"]);
        var system = (string)request.Body["system"]!;
        Assert.StartsWith("Be brief.\n\nReply with only one JSON value", system, StringComparison.Ordinal);
        Assert.Contains("\"required\":[\"name\",\"age\"]", system, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_Instruction_DropsTitlesAndExamplesButKeepsPropertyNamedTitle()
    {
        var text = SchemaInstruction.Build(JsonNode.Parse("""{"title":"T","type":"object","properties":{"title":{"type":"string","examples":["x"],"description":"d"}}}""")!.AsObject());

        Assert.Contains("""Schema: {"type":"object","properties":{"title":{"type":"string","description":"d"}}}""", text, StringComparison.Ordinal);
    }

    [Fact]
    public void TryEstimateMaxTokens_BoundedSchema_ReturnsCeiling()
    {
        var schema = JsonNode.Parse("""
            {"type":"object","additionalProperties":false,"properties":{"label":{"enum":["spam","ham"]},"score":{"type":"number"},
             "reason":{"type":"string","maxLength":40},"tags":{"type":"array","maxItems":3,"items":{"type":"string","maxLength":10}}}}
            """)!.AsObject();

        Assert.True(SchemaOutputBound.TryEstimateMaxTokens(schema, out var tokens));
        Assert.InRange(tokens, 100, 700);
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}""")]
    [InlineData("""{"type":"array","items":{"type":"integer"}}""")]
    [InlineData("""{"type":"object","properties":{"a":{"type":"integer"}}}""")]
    public void TryEstimateMaxTokens_UnboundedSchema_False(string json)
    {
        Assert.False(SchemaOutputBound.TryEstimateMaxTokens(JsonNode.Parse(json)!.AsObject(), out _));
    }

    [Fact]
    public void ApplyMaxTokensCeiling_LowersOnlyLargerCaps()
    {
        var request = OptimizationTestKit.Parse(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[],"max_tokens":50}""");

        Assert.False(SchemaEnforcement.ApplyMaxTokensCeiling(request, 100));
        Assert.True(SchemaEnforcement.ApplyMaxTokensCeiling(request, 20));
        Assert.Equal(20, request.MaxTokens);
    }
}
