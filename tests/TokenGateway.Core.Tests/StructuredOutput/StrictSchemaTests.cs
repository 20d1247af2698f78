using System.Text.Json.Nodes;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Core.Tests.StructuredOutput;

public sealed class StrictSchemaTests
{
    [Fact]
    public void TryConvert_OptionalPropertiesAndOpenObjects_ClosedAllRequiredOptionalNullable()
    {
        var schema = JsonNode.Parse("""
            {"type":"object","properties":{"name":{"type":"string"},"nick":{"type":"string"},"kind":{"type":"string","enum":["a","b"]},
             "home":{"type":"dict","properties":{"zip":{"type":"string"}}},"tags":{"type":"array","items":{"type":"object","properties":{"t":{"type":"string"}}}},
             "ref":{"$ref":"#/$defs/x"}},
             "required":["name"],"$defs":{"x":{"type":"object","properties":{"y":{"type":"integer"}}}}}
            """)!.AsObject();

        Assert.True(StrictSchema.TryConvert(schema, out var strict, out var reason), reason);

        Assert.False((bool)strict["additionalProperties"]!);
        Assert.Equal(["name", "nick", "kind", "home", "tags", "ref"], strict["required"]!.AsArray().Select(n => (string)n!));
        Assert.Equal("""["string","null"]""", strict["properties"]!["nick"]!["type"]!.ToJsonString());
        Assert.Contains(strict["properties"]!["kind"]!["enum"]!.AsArray(), e => e is null);
        Assert.Equal("""["object","null"]""", strict["properties"]!["home"]!["type"]!.ToJsonString());
        Assert.False((bool)strict["properties"]!["tags"]!["items"]!["additionalProperties"]!);
        Assert.NotNull(strict["properties"]!["ref"]!["anyOf"]);
        Assert.False((bool)strict["$defs"]!["x"]!["additionalProperties"]!);
        Assert.Null(schema["additionalProperties"]); // the input is not modified
    }

    [Fact]
    public void TryConvert_AlreadyStrict_Unchanged()
    {
        var schema = JsonNode.Parse(SchemaDiscoveryTests.Person)!.AsObject();

        Assert.True(StrictSchema.IsStrict(schema));
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"a":{"allOf":[{"type":"string"}]}}}""", "allOf")]
    [InlineData("""{"type":"object","properties":{"a":{"not":{"type":"string"}}}}""", "not")]
    [InlineData("""{"anyOf":[{"type":"object"},{"type":"string"}]}""", "root")]
    [InlineData("""{"type":"object","additionalProperties":{"type":"string"}}""", "free-form")]
    public void TryConvert_UnsupportedConstructs_FalseWithReason(string json, string expected)
    {
        Assert.False(StrictSchema.TryConvert(JsonNode.Parse(json)!.AsObject(), out _, out var reason));
        Assert.Contains(expected, reason, StringComparison.Ordinal);
    }

    [Fact]
    public void TryConvert_OneOf_BecomesAnyOf()
    {
        var schema = JsonNode.Parse("""{"type":"object","properties":{"v":{"oneOf":[{"type":"string"},{"type":"integer"}]}},"required":["v"]}""")!.AsObject();

        Assert.True(StrictSchema.TryConvert(schema, out var strict, out _));

        Assert.Null(strict["properties"]!["v"]!["oneOf"]);
        Assert.Equal(2, strict["properties"]!["v"]!["anyOf"]!.AsArray().Count);
    }
}
