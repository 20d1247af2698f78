using System.Text.Json.Nodes;
using TokenGateway.Simulator.Generation;

namespace TokenGateway.Simulator.Tests;

public sealed class SchemaInstanceGeneratorTests
{
    [Theory]
    [InlineData("""{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#"}}},"required":["name","children"]}""")]
    [InlineData("""{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"]}},"$ref":"#/$defs/node"}""")]
    [InlineData("""{"type":"array","items":{"type":"integer","minimum":5,"maximum":5},"minItems":4,"maxItems":4}""")]
    [InlineData("""{"type":"object","allOf":[{"properties":{"a":{"type":"string","format":"email"}},"required":["a"]},{"properties":{"b":{"type":"number","minimum":2.5,"maximum":3}},"required":["b"]}]}""")]
    [InlineData("""{"type":"array","prefixItems":[{"type":"string","format":"ipv4"},{"type":"boolean"}],"items":false}""")]
    [InlineData("""{"type":"object","properties":{"when":{"type":"string","format":"time"},"id":{"type":"string","format":"uuid"},"u":{"type":"string","format":"hostname"}},"required":["when","id","u"],"additionalProperties":false}""")]
    public void Generate_Schema_ProducesValidInstance(string schemaJson)
    {
        var schema = JsonNode.Parse(schemaJson)!;

        var instance = SchemaInstanceGenerator.Serialize(SchemaInstanceGenerator.Generate(schema, 1));

        SchemaAssert.Valid(schema, instance);
    }

    [Fact]
    public void Break_ObjectSchema_ProducesInvalidInstance()
    {
        var schema = SchemaAssert.Complex();
        var instance = SchemaInstanceGenerator.Generate(schema, 3);

        var broken = SchemaInstanceGenerator.Serialize(SchemaInstanceGenerator.Break(schema, instance));

        SchemaAssert.Invalid(schema, broken);
    }

    [Fact]
    public void Generate_SameSeed_IsDeterministic()
    {
        var schema = SchemaAssert.Complex();

        Assert.Equal(
            SchemaInstanceGenerator.Serialize(SchemaInstanceGenerator.Generate(schema, 9)),
            SchemaInstanceGenerator.Serialize(SchemaInstanceGenerator.Generate(schema, 9)));
    }
}
