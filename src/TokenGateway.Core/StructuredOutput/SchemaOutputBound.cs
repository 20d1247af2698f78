using System.Text.Json.Nodes;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// Derives a <c>max_tokens</c> ceiling from a schema that bounds its output: every string has <c>maxLength</c>,
/// <c>enum</c> or <c>const</c> (or a bounded <c>format</c>), every array has <c>maxItems</c>, objects are closed and
/// nothing recurses. The bound counts characters of minified JSON, a safe over-estimate of tokens.
/// </summary>
public static class SchemaOutputBound
{
    private const int MaxDepth = 16;
    private const int Slack = 16;
    private const int NumberChars = 24;

    /// <summary>The ceiling in tokens, or false when the schema does not bound the output.</summary>
    public static bool TryEstimateMaxTokens(JsonObject schema, out int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var chars = Bound(schema, schema, 0);
        maxTokens = chars is { } c && c < int.MaxValue - Slack ? (int)c + Slack : 0;
        return chars is not null;
    }

    private static long? Bound(JsonObject node, JsonObject root, int depth)
    {
        if (depth > MaxDepth)
        {
            return null;
        }

        if (SchemaDiscovery.Str(node["$ref"]) is { } reference)
        {
            return Resolve(root, reference) is { } target ? Bound(target, root, depth + 1) : null;
        }

        if (node["const"] is { } constant)
        {
            return constant.ToJsonString().Length;
        }

        if (node["enum"] is JsonArray values)
        {
            return values.Count == 0 ? null : values.Max(v => (long)(v?.ToJsonString().Length ?? 4));
        }

        if (node["anyOf"] is JsonArray anyOf)
        {
            long max = 0;
            foreach (var option in anyOf)
            {
                if (option is not JsonObject o || Bound(o, root, depth + 1) is not { } b)
                {
                    return null;
                }

                max = Math.Max(max, b);
            }

            return max;
        }

        long worst = 0;
        var types = node["type"] switch
        {
            JsonArray a => a.Select(SchemaDiscovery.Str).ToList(),
            JsonValue v => [SchemaDiscovery.Str(v)],
            _ => [],
        };
        if (types.Count == 0)
        {
            return null;
        }

        foreach (var type in types)
        {
            long? b = type switch
            {
                "null" => 4,
                "boolean" => 5,
                "integer" or "number" => NumberChars,
                "string" => StringBound(node),
                "array" => ArrayBound(node, root, depth),
                "object" => ObjectBound(node, root, depth),
                _ => null,
            };
            if (b is null)
            {
                return null;
            }

            worst = Math.Max(worst, b.Value);
        }

        return worst;
    }

    private static long? StringBound(JsonObject node)
    {
        if (node["maxLength"] is JsonValue v && v.TryGetValue<long>(out var max))
        {
            // Quotes plus worst-case escaping (\uXXXX is 6 characters for one).
            return 2 + (max * 6);
        }

        return SchemaDiscovery.Str(node["format"]) switch
        {
            "date" => 12,
            "time" => 30,
            "date-time" => 40,
            "uuid" => 38,
            "ipv4" => 17,
            "ipv6" => 47,
            _ => null,
        };
    }

    private static long? ArrayBound(JsonObject node, JsonObject root, int depth)
    {
        if (node["maxItems"] is not JsonValue v || !v.TryGetValue<long>(out var maxItems))
        {
            return null;
        }

        if (maxItems == 0)
        {
            return 2;
        }

        if (node["items"] is not JsonObject items || Bound(items, root, depth + 1) is not { } each)
        {
            return null;
        }

        return 2 + (maxItems * (each + 1));
    }

    private static long? ObjectBound(JsonObject node, JsonObject root, int depth)
    {
        if (node["additionalProperties"] is not JsonValue closed || !closed.TryGetValue<bool>(out var open) || open)
        {
            return null;
        }

        long total = 2;
        foreach (var (name, value) in node["properties"] as JsonObject ?? [])
        {
            if (value is not JsonObject child || Bound(child, root, depth + 1) is not { } b)
            {
                return null;
            }

            total += name.Length + 4 + b;
        }

        return total;
    }

    private static JsonObject? Resolve(JsonObject root, string reference)
    {
        if (!reference.StartsWith("#/", StringComparison.Ordinal))
        {
            return null;
        }

        JsonNode? current = root;
        foreach (var part in reference[2..].Split('/'))
        {
            current = current is JsonObject o ? o[part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)] : null;
        }

        return current as JsonObject;
    }
}
