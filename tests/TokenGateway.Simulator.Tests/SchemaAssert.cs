using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace TokenGateway.Simulator.Tests;

internal static class SchemaAssert
{
    private static readonly EvaluationOptions _options = new() { RequireFormatValidation = true, OutputFormat = OutputFormat.List };

    public static bool IsValid(JsonNode schema, string instanceJson)
    {
        var compiled = JsonSchema.FromText(schema.ToJsonString(), baseUri: new Uri($"https://simulator.test/{Guid.NewGuid():N}"));
        using var doc = JsonDocument.Parse(instanceJson);
        return compiled.Evaluate(doc.RootElement, _options).IsValid;
    }

    public static void Valid(JsonNode schema, string instanceJson) =>
        Assert.True(IsValid(schema, instanceJson), $"Instance does not satisfy the schema:\n{instanceJson}\nschema: {schema.ToJsonString()}");

    public static void Invalid(JsonNode schema, string instanceJson) =>
        Assert.False(IsValid(schema, instanceJson), $"Instance unexpectedly satisfies the schema:\n{instanceJson}");

    /// <summary>A schema exercising nested objects, $defs/$ref, enums, const, formats, bounds, arrays and anyOf.</summary>
    public static JsonNode Complex() => JsonNode.Parse("""
        {
          "type": "object",
          "properties": {
            "id": { "type": "string", "format": "uuid" },
            "email": { "type": "string", "format": "email" },
            "born": { "type": "string", "format": "date" },
            "updated": { "type": "string", "format": "date-time" },
            "kind": { "type": "string", "enum": ["person", "robot"] },
            "version": { "const": 3 },
            "age": { "type": "integer", "minimum": 18, "maximum": 99 },
            "score": { "type": "number", "exclusiveMinimum": 0, "maximum": 1 },
            "ratio": { "type": "number", "minimum": 10, "multipleOf": 5 },
            "code": { "type": "string", "minLength": 12, "maxLength": 14 },
            "tags": { "type": "array", "items": { "type": "string" }, "minItems": 3, "uniqueItems": true },
            "home": { "$ref": "#/$defs/address" },
            "contact": { "anyOf": [ { "$ref": "#/$defs/address" }, { "type": "null" } ] },
            "nickname": { "type": ["string", "null"] },
            "active": { "type": "boolean" },
            "children": { "type": "array", "items": { "$ref": "#/$defs/child" }, "minItems": 2 }
          },
          "required": ["id", "email", "born", "updated", "kind", "version", "age", "score", "ratio", "code", "tags", "home", "contact", "nickname", "active", "children"],
          "additionalProperties": false,
          "$defs": {
            "address": {
              "type": "object",
              "properties": { "street": { "type": "string" }, "zip": { "type": "string", "maxLength": 5 }, "site": { "type": "string", "format": "uri" } },
              "required": ["street", "zip", "site"],
              "additionalProperties": false
            },
            "child": {
              "type": "object",
              "properties": { "name": { "type": "string" }, "age": { "type": "integer", "maximum": 17 } },
              "required": ["name", "age"],
              "additionalProperties": false
            }
          }
        }
        """)!;
}
