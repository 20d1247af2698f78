using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.Simulator.Generation;

/// <summary>
/// Produces a deterministic JSON instance that satisfies a JSON Schema (the subset providers' structured outputs use).
/// </summary>
/// <remarks>
/// Supported: type (and type arrays), properties/required (every declared property is emitted), arrays with
/// minItems/maxItems/prefixItems/uniqueItems, enum, const, string formats (date, date-time, time, email, uuid, uri,
/// hostname, ipv4, ipv6, duration) and min/maxLength, numeric minimum/maximum/exclusive bounds/multipleOf, local
/// <c>$ref</c> into <c>$defs</c>/<c>definitions</c>, anyOf/oneOf (first branch; past depth 6 the first branch without <c>$ref</c>), allOf (merged). <c>pattern</c> is not
/// honoured. Recursive schemas stop recursing by emitting the fewest array items and optional properties allowed.
/// </remarks>
internal sealed class SchemaInstanceGenerator
{
    private const int MaxDepth = 32;
    private const int ShrinkDepth = 6;

    private readonly JsonNode? _root;
    private SplitMix64 _rng;

    private SchemaInstanceGenerator(JsonNode? root, ulong seed)
    {
        _root = root;
        _rng = new SplitMix64(seed);
    }

    /// <summary>Generates an instance of <paramref name="schema"/>.</summary>
    public static JsonNode? Generate(JsonNode? schema, ulong seed) => new SchemaInstanceGenerator(schema, seed).Instance(schema, "value", 0, 0);

    /// <summary>Serializes an instance compactly (the form a model answers with).</summary>
    public static string Serialize(JsonNode? instance) => instance is null ? "null" : instance.ToJsonString(SimulatorJson.CompactOptions);

    /// <summary>
    /// Returns a JSON value that violates <paramref name="schema"/> while staying plausible: drops the first required
    /// property, else gives the first property the wrong type, else returns a value of the wrong root type.
    /// </summary>
    public static JsonNode? Break(JsonNode? schema, JsonNode? instance)
    {
        var generator = new SchemaInstanceGenerator(schema, 0);
        var resolved = generator.Resolve(schema);
        if (instance is JsonObject obj && resolved is JsonObject s)
        {
            if (s["required"] is JsonArray { Count: > 0 } required && required[0]?.GetValue<string>() is { } name && obj.ContainsKey(name))
            {
                obj.Remove(name);
                return obj;
            }

            if (s["properties"] is JsonObject { Count: > 0 } properties)
            {
                var first = properties.First();
                var type = generator.Resolve(first.Value) is JsonObject ps ? FirstType(ps) : null;
                obj[first.Key] = type == "string" ? JsonValue.Create(12345) : JsonValue.Create("not-a-valid-value");
                return obj;
            }
        }

        var rootType = resolved is JsonObject r ? FirstType(r) : null;
        return rootType == "string" ? JsonValue.Create(12345) : JsonValue.Create("this answer does not match the schema");
    }

    private JsonNode? Instance(JsonNode? schema, string name, int depth, int index)
    {
        if (depth > MaxDepth)
        {
            return null;
        }

        schema = Resolve(schema);
        if (schema is null || schema.GetValueKind() == JsonValueKind.True)
        {
            return JsonValue.Create(Words(name, 2));
        }

        if (schema is not JsonObject s)
        {
            return null;
        }

        if (s.TryGetPropertyValue("const", out var constant))
        {
            return constant?.DeepClone();
        }

        if (s["enum"] is JsonArray { Count: > 0 } values)
        {
            return values[Math.Min(index, values.Count - 1)]?.DeepClone();
        }

        if ((s["anyOf"] ?? s["oneOf"]) is JsonArray { Count: > 0 } branches)
        {
            // The first branch, except deep in a recursive schema, where a branch without a $ref (often null) ends the recursion.
            var branch = depth >= ShrinkDepth ? branches.FirstOrDefault(b => b is JsonObject o && !o.ContainsKey("$ref")) ?? branches[0] : branches[0];
            return Instance(branch, name, depth + 1, index);
        }

        if (s["allOf"] is JsonArray { Count: > 0 } all)
        {
            return Instance(Merge(all), name, depth + 1, index);
        }

        var type = FirstType(s) ?? (s.ContainsKey("properties") ? "object" : s.ContainsKey("items") || s.ContainsKey("prefixItems") ? "array" : "string");
        return type switch
        {
            "object" => ObjectInstance(s, depth, index),
            "array" => ArrayInstance(s, name, depth),
            "integer" => JsonValue.Create(IntegerValue(s, index)),
            "number" => JsonValue.Create(NumberValue(s, index)),
            "boolean" => JsonValue.Create(index % 2 == 0),
            "null" => null,
            _ => JsonValue.Create(StringValue(s, name, index)),
        };
    }

    private JsonObject ObjectInstance(JsonObject s, int depth, int index)
    {
        var result = new JsonObject();
        var required = s["required"] is JsonArray r ? r.Select(n => n?.GetValue<string>()).OfType<string>().ToHashSet(StringComparer.Ordinal) : [];
        if (s["properties"] is JsonObject properties)
        {
            foreach (var (key, value) in properties)
            {
                if (depth >= ShrinkDepth && !required.Contains(key))
                {
                    continue;
                }

                result[key] = Instance(value, key, depth + 1, index);
            }
        }

        foreach (var key in required)
        {
            if (!result.ContainsKey(key))
            {
                result[key] = JsonValue.Create(Words(key, 2));
            }
        }

        return result;
    }

    private JsonArray ArrayInstance(JsonObject s, string name, int depth)
    {
        var min = ReadInt(s, "minItems") ?? 0;
        var max = ReadInt(s, "maxItems") ?? int.MaxValue;
        var prefix = s["prefixItems"] as JsonArray;
        var count = depth >= ShrinkDepth ? min : Math.Max(min, Math.Max(1, prefix?.Count ?? 0));
        count = Math.Min(count, Math.Min(max, 64 + min));
        var items = s["items"];
        var result = new JsonArray();
        for (var i = 0; i < count; i++)
        {
            var itemSchema = prefix is not null && i < prefix.Count ? prefix[i] : items;
            result.Add(Instance(itemSchema, Singular(name), depth + 1, i));
        }

        return result;
    }

    private string StringValue(JsonObject s, string name, int index)
    {
        var format = (s["format"] as JsonValue)?.GetValue<string>();
        var value = format switch
        {
            "date" => new DateOnly(2024, 1, 15).AddDays(index).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            "date-time" => new DateTime(2024, 1, 15, 9, 30, 0, DateTimeKind.Utc).AddDays(index).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            "time" => $"09:{30 + (index % 30):00}:00Z",
            "email" or "idn-email" => $"{Slug(name)}{(index == 0 ? string.Empty : index.ToString(CultureInfo.InvariantCulture))}@example.com",
            "uuid" => DeterministicGuid().ToString(),
            "uri" or "url" or "iri" or "uri-reference" => $"https://example.com/{Slug(name)}/{index + 1}",
            "hostname" or "idn-hostname" => $"{Slug(name)}{index + 1}.example.com",
            "ipv4" => $"192.0.2.{(index % 250) + 1}",
            "ipv6" => $"2001:db8::{(index % 9000) + 1}",
            "duration" => $"PT{index + 1}H",
            _ => index == 0 ? Words(name, 3) : $"{Words(name, 3)} {index + 1}",
        };

        var minLength = ReadInt(s, "minLength") ?? 0;
        var maxLength = ReadInt(s, "maxLength");
        while (value.Length < minLength)
        {
            value += " sample";
        }

        if (maxLength is { } m && value.Length > m)
        {
            value = value[..Math.Max(m, minLength)].TrimEnd();
            while (value.Length < minLength)
            {
                value += "x";
            }
        }

        return value;
    }

    private static long IntegerValue(JsonObject s, int index)
    {
        var minimum = ReadDouble(s, "minimum");
        var exclusiveMin = ReadDouble(s, "exclusiveMinimum");
        var maximum = ReadDouble(s, "maximum");
        var exclusiveMax = ReadDouble(s, "exclusiveMaximum");
        var lower = minimum is { } lo ? (long)Math.Ceiling(lo) : exclusiveMin is { } xlo ? (long)Math.Floor(xlo) + 1 : (long?)null;
        var upper = maximum is { } hi ? (long)Math.Floor(hi) : exclusiveMax is { } xhi ? (long)Math.Ceiling(xhi) - 1 : (long?)null;
        var value = (lower ?? Math.Min(1, upper ?? 1)) + index;
        if (ReadDouble(s, "multipleOf") is { } step && step >= 1)
        {
            var m = (long)step;
            value = (long)Math.Ceiling(value / (double)m) * m;
        }

        return upper is { } u && value > u ? Math.Max(lower ?? u, u) : value;
    }

    private static double NumberValue(JsonObject s, int index)
    {
        var minimum = ReadDouble(s, "minimum") ?? (ReadDouble(s, "exclusiveMinimum") is { } xlo ? xlo + 0.5 : null);
        var maximum = ReadDouble(s, "maximum") ?? (ReadDouble(s, "exclusiveMaximum") is { } xhi ? xhi - 0.5 : null);
        var value = (minimum ?? Math.Min(1.5, maximum ?? 1.5)) + index;
        if (ReadDouble(s, "multipleOf") is { } step && step > 0)
        {
            value = Math.Ceiling(value / step) * step;
        }

        if (maximum is { } hi && value > hi)
        {
            value = minimum is { } lo ? (lo + hi) / 2 : hi;
        }

        return value;
    }

    private JsonNode? Resolve(JsonNode? schema)
    {
        for (var hops = 0; hops < 16 && schema is JsonObject o && o["$ref"] is JsonValue r && r.TryGetValue<string>(out var reference); hops++)
        {
            var target = Pointer(reference);
            if (target is null)
            {
                return null;
            }

            // Sibling keywords next to $ref (2020-12) are merged over the target.
            if (o.Count > 1 && target is JsonObject t)
            {
                var merged = (JsonObject)t.DeepClone();
                foreach (var (key, value) in o)
                {
                    if (key != "$ref")
                    {
                        merged[key] = value?.DeepClone();
                    }
                }

                target = merged;
            }

            schema = target;
        }

        return schema;
    }

    private JsonNode? Pointer(string reference)
    {
        if (!reference.StartsWith('#'))
        {
            return null;
        }

        var node = _root;
        foreach (var segment in reference[1..].Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var key = Uri.UnescapeDataString(segment).Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            node = node switch
            {
                JsonObject obj => obj[key],
                JsonArray arr when int.TryParse(key, CultureInfo.InvariantCulture, out var i) && i < arr.Count => arr[i],
                _ => null,
            };
        }

        return node;
    }

    private JsonObject Merge(JsonArray all)
    {
        var merged = new JsonObject();
        var properties = new JsonObject();
        var required = new JsonArray();
        foreach (var part in all)
        {
            if (Resolve(part) is not JsonObject p)
            {
                continue;
            }

            foreach (var (key, value) in p)
            {
                switch (key)
                {
                    case "properties" when value is JsonObject props:
                        foreach (var (name, schema) in props)
                        {
                            properties[name] = schema?.DeepClone();
                        }

                        break;
                    case "required" when value is JsonArray req:
                        foreach (var r in req)
                        {
                            required.Add(r?.DeepClone());
                        }

                        break;
                    default:
                        merged[key] = value?.DeepClone();
                        break;
                }
            }
        }

        if (properties.Count > 0)
        {
            merged["properties"] = properties;
            merged["type"] ??= "object";
        }

        if (required.Count > 0)
        {
            merged["required"] = required;
        }

        return merged;
    }

    private static string? FirstType(JsonObject s) => s["type"] switch
    {
        JsonValue v when v.TryGetValue<string>(out var t) => t,
        JsonArray types => types.Select(t => t?.GetValue<string>()).FirstOrDefault(t => t is not null and not "null")
            ?? types.Select(t => t?.GetValue<string>()).FirstOrDefault(),
        _ => null,
    };

    private static int? ReadInt(JsonObject s, string name) =>
        s[name] is JsonValue v && v.TryGetValue<double>(out var d) ? (int)Math.Clamp(d, 0, int.MaxValue) : null;

    private static double? ReadDouble(JsonObject s, string name) =>
        s[name] is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : null;

    private Guid DeterministicGuid()
    {
        Span<byte> bytes = stackalloc byte[16];
        BitConverter.TryWriteBytes(bytes, _rng.Next());
        BitConverter.TryWriteBytes(bytes[8..], _rng.Next());
        bytes[7] = (byte)((bytes[7] & 0x0F) | 0x40); // version 4
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80); // RFC 4122 variant
        return new Guid(bytes);
    }

    private string Words(string name, int extra)
    {
        var words = Humanize(name);
        string[] fillers = ["sample", "example", "value", "entry", "detail", "note", "item", "record"];
        for (var i = 0; i < extra - 1; i++)
        {
            words += " " + fillers[_rng.Next(0, fillers.Length)];
        }

        return words;
    }

    private static string Humanize(string name)
    {
        var chars = new List<char>(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (c is '_' or '-' or '.')
            {
                chars.Add(' ');
            }
            else if (char.IsUpper(c) && i > 0 && char.IsLower(name[i - 1]))
            {
                chars.Add(' ');
                chars.Add(char.ToLowerInvariant(c));
            }
            else
            {
                chars.Add(char.ToLowerInvariant(c));
            }
        }

        var text = new string([.. chars]).Trim();
        return text.Length == 0 ? "value" : text;
    }

    private static string Slug(string name) => Humanize(name).Replace(' ', '.');

    private static string Singular(string name) =>
        name.EndsWith("ies", StringComparison.Ordinal) ? name[..^3] + "y" :
        name.EndsWith('s') && name.Length > 3 ? name[..^1] : name;
}
