using System.Text;
using System.Text.Json;

namespace TokenGateway.Core.Optimization.Toon;

/// <summary>
/// Encodes a JSON value as TOON (Token-Oriented Object Notation, spec v4.0): tabular arrays, nested field groups,
/// keyed tabular objects, canonical numbers, key order preserved. Deterministic: the same JSON yields the same bytes.
/// </summary>
internal static class ToonEncoder
{
    /// <summary>Encodes <paramref name="value"/>; throws <see cref="ArgumentException"/> for objects with duplicate keys.</summary>
    public static string Encode(JsonElement value, ToonEncoderOptions? options = null)
    {
        var writer = new Writer(options ?? ToonEncoderOptions.Default);
        writer.WriteRoot(value);
        return writer.ToString();
    }

    /// <summary>Encodes a JSON text; convenience for tests and tools.</summary>
    public static string Encode(string json, ToonEncoderOptions? options = null)
    {
        using var document = JsonDocument.Parse(json);
        return Encode(document.RootElement, options);
    }

    /// <summary>A tabular header field: a leaf (no children) or a nested field group.</summary>
    private sealed record Field(string Name, IReadOnlyList<Field>? Children);

    private sealed class Writer(ToonEncoderOptions options)
    {
        private readonly List<(int Depth, string Text)> _lines = [];
        private readonly char _delimiter = options.Delimiter;

        public void WriteRoot(JsonElement value)
        {
            switch (value.ValueKind)
            {
                case JsonValueKind.Array:
                    WriteArray(string.Empty, value, 0, listItem: false);
                    break;
                case JsonValueKind.Object:
                    if (TryKeyedFields(value, out var keyedFields))
                    {
                        WriteKeyed(string.Empty, value, keyedFields, 0);
                    }
                    else
                    {
                        WriteFields(value, 0);
                    }

                    break;
                default:
                    _lines.Add((0, Primitive(value)));
                    break;
            }
        }

        public override string ToString()
        {
            var sb = new StringBuilder();
            for (var i = 0; i < _lines.Count; i++)
            {
                if (i > 0)
                {
                    sb.Append('\n');
                }

                sb.Append(' ', _lines[i].Depth * options.IndentSize).Append(_lines[i].Text);
            }

            return sb.ToString();
        }

        private void WriteFields(JsonElement obj, int depth)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in obj.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                {
                    throw new ArgumentException($"Duplicate key '{property.Name}' cannot be encoded losslessly.");
                }

                WriteField(property.Name, property.Value, depth);
            }
        }

        private void WriteField(string key, JsonElement value, int depth)
        {
            var encodedKey = Key(key);
            switch (value.ValueKind)
            {
                case JsonValueKind.Array:
                    WriteArray(encodedKey, value, depth, listItem: false);
                    break;
                case JsonValueKind.Object:
                    if (TryKeyedFields(value, out var fields))
                    {
                        WriteKeyed(encodedKey, value, fields, depth);
                    }
                    else
                    {
                        _lines.Add((depth, encodedKey + ":"));
                        WriteFields(value, depth + 1);
                    }

                    break;
                default:
                    _lines.Add((depth, encodedKey + ": " + Primitive(value)));
                    break;
            }
        }

        private void WriteKeyed(string prefix, JsonElement obj, IReadOnlyList<Field> fields, int depth)
        {
            var count = 0;
            foreach (var _ in obj.EnumerateObject())
            {
                count++;
            }

            _lines.Add((depth, $"{prefix}[{count}:{DelimiterSymbol()}]{{{FieldList(fields)}}}:"));
            foreach (var entry in obj.EnumerateObject())
            {
                _lines.Add((depth + 1, Key(entry.Name) + ": " + Row(entry.Value, fields)));
            }
        }

        private void WriteArray(string prefix, JsonElement array, int depth, bool listItem)
        {
            var length = array.GetArrayLength();
            if (length == 0)
            {
                // Canonical empty array: `key: []`, root `[]`, list item `- [0]:`.
                _lines.Add((depth, listItem ? "[0]:" : prefix.Length == 0 ? "[]" : prefix + ": []"));
                return;
            }

            var header = $"{prefix}[{length}{DelimiterSymbol()}]";
            if (AllPrimitive(array))
            {
                _lines.Add((depth, header + ": " + string.Join(_delimiter, array.EnumerateArray().Select(Primitive))));
                return;
            }

            // Keyless fields-bearing headers are not allowed as list items (spec §6), so those use list form.
            if (!(listItem && prefix.Length == 0) && TryTabularFields(array.EnumerateArray().ToList(), out var fields))
            {
                _lines.Add((depth, $"{header}{{{FieldList(fields)}}}:"));
                foreach (var row in array.EnumerateArray())
                {
                    _lines.Add((depth + 1, Row(row, fields)));
                }

                return;
            }

            _lines.Add((depth, header + ":"));
            foreach (var item in array.EnumerateArray())
            {
                WriteListItem(item, depth + 1);
            }
        }

        private void WriteListItem(JsonElement item, int depth)
        {
            switch (item.ValueKind)
            {
                case JsonValueKind.Array:
                    {
                        var start = _lines.Count;
                        WriteArray(string.Empty, item, depth, listItem: true);
                        _lines[start] = (depth, "- " + _lines[start].Text);
                        break;
                    }

                case JsonValueKind.Object:
                    {
                        using var properties = item.EnumerateObject();
                        if (!properties.MoveNext())
                        {
                            _lines.Add((depth, "-"));
                            break;
                        }

                        // The first field sits on the hyphen line; its children go two levels deeper, siblings one.
                        var start = _lines.Count;
                        var seen = new HashSet<string>(StringComparer.Ordinal) { properties.Current.Name };
                        WriteField(properties.Current.Name, properties.Current.Value, depth + 1);
                        _lines[start] = (depth, "- " + _lines[start].Text);
                        while (properties.MoveNext())
                        {
                            if (!seen.Add(properties.Current.Name))
                            {
                                throw new ArgumentException($"Duplicate key '{properties.Current.Name}' cannot be encoded losslessly.");
                            }

                            WriteField(properties.Current.Name, properties.Current.Value, depth + 1);
                        }

                        break;
                    }

                default:
                    _lines.Add((depth, "- " + Primitive(item)));
                    break;
            }
        }

        private string Row(JsonElement obj, IReadOnlyList<Field> fields)
        {
            var cells = new List<string>();
            AppendCells(obj, fields, cells);
            return string.Join(_delimiter, cells);
        }

        private void AppendCells(JsonElement obj, IReadOnlyList<Field> fields, List<string> cells)
        {
            foreach (var field in fields)
            {
                var value = obj.GetProperty(field.Name);
                if (field.Children is null)
                {
                    cells.Add(Primitive(value));
                }
                else
                {
                    AppendCells(value, field.Children, cells);
                }
            }
        }

        private string FieldList(IReadOnlyList<Field> fields) =>
            string.Join(_delimiter, fields.Select(f => f.Children is null ? Key(f.Name) : $"{Key(f.Name)}{{{FieldList(f.Children)}}}"));

        private string DelimiterSymbol() => _delimiter == ',' ? string.Empty : _delimiter.ToString();

        private string Primitive(JsonElement value) => value.ValueKind switch
        {
            JsonValueKind.Null => "null",
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Number => ToonNumber.Canonicalize(value.GetRawText()),
            JsonValueKind.String => ToonStrings.EncodeValue(value.GetString()!, _delimiter),
            _ => throw new ArgumentException("Not a primitive."),
        };

        private static string Key(string key) => ToonStrings.EncodeKey(key);
    }

    private static bool IsPrimitive(JsonElement e) => e.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array);

    private static bool AllPrimitive(JsonElement array)
    {
        foreach (var item in array.EnumerateArray())
        {
            if (!IsPrimitive(item))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>An object with ≥ 2 entries whose values are uniform non-empty objects (spec §9.5).</summary>
    private static bool TryKeyedFields(JsonElement obj, out IReadOnlyList<Field> fields)
    {
        fields = [];
        var values = new List<JsonElement>();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in obj.EnumerateObject())
        {
            if (!keys.Add(property.Name))
            {
                return false;
            }

            values.Add(property.Value);
        }

        return values.Count >= 2 && TryTabularFields(values, out fields);
    }

    /// <summary>Rows that are non-empty objects with one key set whose columns are uniform (spec §9.3).</summary>
    private static bool TryTabularFields(IReadOnlyList<JsonElement> rows, out IReadOnlyList<Field> fields)
    {
        fields = [];
        if (rows.Count == 0 || !SameKeySet(rows, out var names))
        {
            return false;
        }

        var result = new List<Field>(names.Count);
        foreach (var name in names)
        {
            var column = rows.Select(r => r.GetProperty(name)).ToList();
            if (column.All(IsPrimitive))
            {
                result.Add(new Field(name, null));
            }
            else if (column.All(c => c.ValueKind == JsonValueKind.Object) && TryTabularFields(column, out var children))
            {
                result.Add(new Field(name, children));
            }
            else
            {
                return false;
            }
        }

        fields = result;
        return true;
    }

    private static bool SameKeySet(IReadOnlyList<JsonElement> rows, out List<string> names)
    {
        names = [];
        if (rows[0].ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in rows[0].EnumerateObject())
        {
            if (!set.Add(property.Name))
            {
                return false;
            }

            names.Add(property.Name);
        }

        if (names.Count == 0)
        {
            return false;
        }

        for (var i = 1; i < rows.Count; i++)
        {
            if (rows[i].ValueKind != JsonValueKind.Object)
            {
                return false;
            }

            var count = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in rows[i].EnumerateObject())
            {
                if (!set.Contains(property.Name) || !seen.Add(property.Name))
                {
                    return false;
                }

                count++;
            }

            if (count != names.Count)
            {
                return false;
            }
        }

        return true;
    }
}
