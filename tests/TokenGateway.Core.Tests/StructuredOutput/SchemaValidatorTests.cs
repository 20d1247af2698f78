using System.Text.Json.Nodes;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Core.Tests.StructuredOutput;

public sealed class SchemaValidatorTests
{
    private static CompiledSchema Person()
    {
        Assert.True(CompiledSchema.TryCompile(JsonNode.Parse(SchemaDiscoveryTests.Person)!.AsObject(), out var compiled, out var error), error);
        return compiled!;
    }

    [Fact]
    public void Validate_ValidAnswer_Valid()
    {
        Assert.True(Person().Validate("""{"name":"Ada","age":36}""").IsValid);
    }

    [Fact]
    public void Validate_WrongTypeAndMissingProperty_ErrorsCarryJsonPointers()
    {
        var result = Person().Validate("""{"age":"old"}""");

        Assert.False(result.IsValid);
        Assert.Contains(result.Errors, e => e.Pointer == "/age");
        Assert.Contains(result.Errors, e => e.Pointer == "" && e.Message.Contains("name", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_NotJson_SingleRootParseError()
    {
        var result = Person().Validate("Sure! Here it is.");

        var error = Assert.Single(result.Errors);
        Assert.Equal("", error.Pointer);
        Assert.StartsWith("The answer is not valid JSON", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_Format_IsAsserted()
    {
        Assert.True(CompiledSchema.TryCompile(JsonNode.Parse("""{"type":"string","format":"date"}""")!.AsObject(), out var compiled, out _));

        Assert.False(compiled!.Validate("\"yesterday\"").IsValid);
        Assert.True(compiled.Validate("\"2026-01-31\"").IsValid);
    }

    [Theory]
    [InlineData("""{"type":12}""")]
    [InlineData("""{"minimum":"zero"}""")]
    [InlineData("""{"$ref":"#/$defs/missing"}""")]
    public void TryCompile_MalformedSchema_FalseWithMessage(string json)
    {
        Assert.False(CompiledSchema.TryCompile(JsonNode.Parse(json)!.AsObject(), out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void TryCompile_SameSchemaTwice_ReturnsCachedInstance()
    {
        var schema = JsonNode.Parse("""{"type":"object","properties":{"cached":{"type":"boolean"}}}""")!.AsObject();

        CompiledSchema.TryCompile(schema, out var a, out _);
        CompiledSchema.TryCompile((JsonObject)schema.DeepClone(), out var b, out _);

        Assert.Same(a, b);
    }

    [Fact]
    public void TryCompile_ManyDistinctSchemas_KeepsTheOneInUseCompiled()
    {
        // Before issue #11 the cache was cleared whole once it held 512 schemas, recompiling the ones in use.
        var inUse = JsonNode.Parse("""{"type":"object","properties":{"in_use_marker_3f9a":{"type":"integer"}}}""")!.AsObject();
        Assert.True(CompiledSchema.TryCompile(inUse, out var first, out _));

        for (var i = 0; i < 1500; i++)
        {
            var other = new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject { [$"p{i}_{Guid.NewGuid():N}"] = new JsonObject { ["type"] = "string" } },
            };
            Assert.True(CompiledSchema.TryCompile(other, out _, out _));
            if (i % 20 == 0)
            {
                Assert.True(CompiledSchema.TryCompile(inUse, out var again, out _));
                Assert.Same(first, again);
            }
        }
    }
}
