using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.Core.Optimization.Toon;

/// <summary>Semantic JSON equality: numbers by canonical value, objects as key sets (TOON tables reorder keys).</summary>
internal static class JsonSemantics
{
    public static bool AreEquivalent(JsonElement expected, JsonNode? actual)
    {
        switch (expected.ValueKind)
        {
            case JsonValueKind.Null:
                return actual is null;
            case JsonValueKind.Object:
                {
                    if (actual is not JsonObject obj)
                    {
                        return false;
                    }

                    var count = 0;
                    foreach (var property in expected.EnumerateObject())
                    {
                        count++;
                        if (!obj.TryGetPropertyValue(property.Name, out var value) || !AreEquivalent(property.Value, value))
                        {
                            return false;
                        }
                    }

                    return count == obj.Count;
                }

            case JsonValueKind.Array:
                {
                    if (actual is not JsonArray array || array.Count != expected.GetArrayLength())
                    {
                        return false;
                    }

                    var i = 0;
                    foreach (var item in expected.EnumerateArray())
                    {
                        if (!AreEquivalent(item, array[i++]))
                        {
                            return false;
                        }
                    }

                    return true;
                }

            default:
                {
                    if (actual is not JsonValue value || value.GetValueKind() != expected.ValueKind)
                    {
                        return false;
                    }

                    return expected.ValueKind switch
                    {
                        JsonValueKind.String => expected.GetString() == value.GetValue<string>(),
                        JsonValueKind.Number => ToonNumber.Canonicalize(expected.GetRawText()) == ToonNumber.Canonicalize(value.ToJsonString()),
                        _ => true,
                    };
                }
        }
    }
}
