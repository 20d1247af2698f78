using System.Text.Json.Nodes;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// Converts a JSON Schema to OpenAI's strict structured-output subset: every object gets
/// <c>additionalProperties: false</c> and lists every property in <c>required</c> (optional properties become
/// nullable), <c>"type": "dict"</c> becomes <c>"object"</c> and <c>oneOf</c> becomes <c>anyOf</c>.
/// </summary>
public static class StrictSchema
{
    private static readonly string[] _unsupported = ["allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "patternProperties"];
    private static readonly string[] _schemaMaps = ["$defs", "definitions"];
    private static readonly string[] _schemaLists = ["anyOf", "prefixItems"];

    /// <summary>
    /// Returns a converted copy of <paramref name="schema"/>, or false with a reason when it uses keywords strict mode
    /// cannot express (the caller then sends <c>strict: false</c> and relies on validation).
    /// </summary>
    public static bool TryConvert(JsonObject schema, out JsonObject strict, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(schema);
        strict = (JsonObject)schema.DeepClone();
        reason = null;
        if (strict["anyOf"] is not null && strict["properties"] is null)
        {
            reason = "the root schema must be an object, not anyOf";
            return false;
        }

        return Visit(strict, ref reason);
    }

    /// <summary>True when <paramref name="schema"/> already satisfies the strict subset (conversion would not change it).</summary>
    public static bool IsStrict(JsonObject schema) =>
        TryConvert(schema, out var converted, out _) && JsonNode.DeepEquals(converted, schema);

    private static bool Visit(JsonObject node, ref string? reason)
    {
        foreach (var keyword in _unsupported)
        {
            if (node.ContainsKey(keyword))
            {
                reason = $"'{keyword}' is not supported in strict mode";
                return false;
            }
        }

        if (SchemaDiscovery.Str(node["type"]) == "dict")
        {
            node["type"] = "object";
        }

        if (node["oneOf"] is JsonArray oneOf)
        {
            node.Remove("oneOf");
            node["anyOf"] = oneOf;
        }

        if (node["properties"] is JsonObject properties)
        {
            var required = new HashSet<string>(StringComparer.Ordinal);
            if (node["required"] is JsonArray req)
            {
                foreach (var r in req)
                {
                    if (SchemaDiscovery.Str(r) is { } name)
                    {
                        required.Add(name);
                    }
                }
            }

            var all = new JsonArray();
            foreach (var (name, value) in properties.ToList())
            {
                all.Add(name);
                if (value is not JsonObject child)
                {
                    continue;
                }

                if (!Visit(child, ref reason))
                {
                    return false;
                }

                if (!required.Contains(name) && !TryMakeNullableInPlace(child))
                {
                    properties[name] = new JsonObject { ["anyOf"] = new JsonArray(child.DeepClone(), new JsonObject { ["type"] = "null" }) };
                }
            }

            node["required"] = all;
            node["additionalProperties"] = false;
            if (SchemaDiscovery.Str(node["type"]) is null && node["type"] is null)
            {
                node["type"] = "object";
            }
        }
        else if (IsObjectType(node))
        {
            if (node["additionalProperties"] is JsonObject)
            {
                reason = "free-form maps (additionalProperties with a schema) are not supported in strict mode";
                return false;
            }

            node["properties"] ??= new JsonObject();
            node["required"] = new JsonArray();
            node["additionalProperties"] = false;
        }

        if (node["items"] is JsonObject items && !Visit(items, ref reason))
        {
            return false;
        }

        foreach (var list in _schemaLists)
        {
            if (node[list] is JsonArray array)
            {
                foreach (var item in array)
                {
                    if (item is JsonObject o && !Visit(o, ref reason))
                    {
                        return false;
                    }
                }
            }
        }

        foreach (var map in _schemaMaps)
        {
            if (node[map] is JsonObject defs)
            {
                foreach (var (_, def) in defs)
                {
                    if (def is JsonObject o && !Visit(o, ref reason))
                    {
                        return false;
                    }
                }
            }
        }

        return true;
    }

    private static bool IsObjectType(JsonObject node) =>
        SchemaDiscovery.Str(node["type"]) == "object"
        || (node["type"] is JsonArray types && types.Any(t => SchemaDiscovery.Str(t) == "object"));

    private static bool TryMakeNullableInPlace(JsonObject child)
    {
        switch (child["type"])
        {
            case JsonValue v when v.TryGetValue<string>(out var type):
                if (type != "null")
                {
                    child["type"] = new JsonArray(type, "null");
                    if (child["enum"] is JsonArray values && !values.Any(e => e is null))
                    {
                        values.Add(null);
                    }
                }

                return true;
            case JsonArray types:
                if (!types.Any(t => SchemaDiscovery.Str(t) == "null"))
                {
                    types.Add("null");
                }

                return true;
            default:
                if (child["anyOf"] is JsonArray anyOf)
                {
                    if (!anyOf.Any(a => a is JsonObject o && SchemaDiscovery.Str(o["type"]) == "null"))
                    {
                        anyOf.Add(new JsonObject { ["type"] = "null" });
                    }

                    return true;
                }

                return false;
        }
    }
}
