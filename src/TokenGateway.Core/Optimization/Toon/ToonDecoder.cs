using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace TokenGateway.Core.Optimization.Toon;

/// <summary>
/// Decodes TOON (spec v4.0) into JSON nodes, with strict-mode validation (§14): counts, row widths, indentation,
/// blank lines inside arrays, malformed headers, escapes and duplicate keys. Used to prove encoder round trips.
/// </summary>
internal static class ToonDecoder
{
    /// <summary>Decodes <paramref name="text"/>; throws <see cref="ToonFormatException"/> when it is malformed.</summary>
    public static JsonNode? Decode(string text, ToonDecoderOptions? options = null) =>
        new Parser(text, options ?? ToonDecoderOptions.Default).ParseDocument();

    private sealed record Line(int Number, int Depth, string Content, bool BlankBefore);

    private sealed record HeaderField(string Name, IReadOnlyList<HeaderField>? Children);

    /// <summary>A parsed array header: <c>key[N:|]{fields}: inline</c>.</summary>
    private sealed record Header(string? Key, int Length, bool Keyed, char Delimiter, IReadOnlyList<HeaderField>? Fields, string? Inline);

    private sealed class Parser
    {
        private readonly List<Line> _lines = [];
        private readonly bool _strict;
        private int _pos;

        public Parser(string text, ToonDecoderOptions options)
        {
            _strict = options.Strict;
            var raw = text.Split('\n');
            var blank = false;
            for (var n = 0; n < raw.Length; n++)
            {
                var line = raw[n].EndsWith('\r') ? raw[n][..^1] : raw[n];
                if (line.AsSpan().Trim(" \t").IsEmpty)
                {
                    blank = true;
                    continue;
                }

                var spaces = 0;
                while (spaces < line.Length && line[spaces] == ' ')
                {
                    spaces++;
                }

                if (line[spaces] == '#')
                {
                    continue; // full-line comment: stripped before structural interpretation, never counts as blank
                }

                if (line[spaces] == '\t')
                {
                    if (_strict)
                    {
                        throw new ToonFormatException("tabs are not allowed in indentation", n + 1);
                    }

                    while (spaces < line.Length && line[spaces] is ' ' or '\t')
                    {
                        spaces++;
                    }
                }

                if (_strict && spaces % options.IndentSize != 0)
                {
                    throw new ToonFormatException($"indentation of {spaces} spaces is not a multiple of {options.IndentSize}", n + 1);
                }

                _lines.Add(new Line(n + 1, spaces / options.IndentSize, line[spaces..], blank));
                blank = false;
            }
        }

        public JsonNode? ParseDocument()
        {
            if (_lines.Count == 0)
            {
                return new JsonObject();
            }

            var first = _lines[0];
            if (first.Depth != 0 && _strict)
            {
                throw Error("the first line must not be indented", first);
            }

            JsonNode? result;
            if (first.Content == "[]")
            {
                _pos = 1;
                result = new JsonArray();
            }
            else if (first.Content.StartsWith('[') && TryParseHeader(first, first.Content, 0, out var header) && header is not null)
            {
                _pos = 1;
                result = header.Keyed ? ParseKeyedBody(header, first, 0) : ParseArrayBody(header, first, 0);
            }
            else if (FindUnquotedColon(first.Content) < 0)
            {
                _pos = 1;
                result = ParsePrimitive(first.Content.Trim(' '), first);
                if (_pos < _lines.Count)
                {
                    throw Error("only one primitive value may appear at the root", _lines[_pos]);
                }
            }
            else
            {
                result = ParseObject(0);
            }

            if (_pos < _lines.Count)
            {
                throw Error("unexpected content after the root value", _lines[_pos]);
            }

            return result;
        }

        private JsonObject ParseObject(int depth)
        {
            var obj = new JsonObject();
            while (_pos < _lines.Count)
            {
                var line = _lines[_pos];
                if (line.Depth < depth)
                {
                    break;
                }

                if (line.Depth > depth)
                {
                    throw Error("line is indented deeper than its scope allows", line);
                }

                _pos++;
                var (key, value) = ParseField(line, line.Content, depth);
                Add(obj, key, value, line);
            }

            return obj;
        }

        /// <summary>Parses one <c>key: …</c> line (already consumed) whose scope children sit at depth + 1.</summary>
        private (string Key, JsonNode? Value) ParseField(Line line, string content, int depth)
        {
            if (content.StartsWith('['))
            {
                throw Error("a keyless array header is only valid at the root or as a list item", line);
            }

            var (key, rest) = ReadKey(line, content);
            if (rest.StartsWith('['))
            {
                if (TryParseHeader(line, rest, depth, out var header, key))
                {
                    return (key, header!.Keyed ? ParseKeyedBody(header, line, depth) : ParseArrayBody(header, line, depth));
                }

                // Non-strict fall-through (§6): the whole token before the first unquoted colon is a literal key.
                var colon = FindUnquotedColon(content);
                key = content[..colon];
                rest = content[colon..];
            }

            if (!rest.StartsWith(':'))
            {
                throw Error("expected ':' after the key", line);
            }

            var valueText = rest[1..].Trim(' ');
            if (valueText.Length > 0)
            {
                if (valueText == "[]")
                {
                    return (key, new JsonArray());
                }

                EnsureNoChildren(depth);
                return (key, ParsePrimitive(valueText, line));
            }

            if (_pos < _lines.Count && _lines[_pos].Depth > depth)
            {
                if (_lines[_pos].Depth > depth + 1)
                {
                    throw Error("indentation jumps more than one level", _lines[_pos]);
                }

                return (key, ParseObject(depth + 1));
            }

            return (key, new JsonObject());
        }

        private void EnsureNoChildren(int depth)
        {
            if (_pos < _lines.Count && _lines[_pos].Depth > depth)
            {
                throw Error("line is indented under a value that opens no scope", _lines[_pos]);
            }
        }

        private JsonNode ParseArrayBody(Header header, Line headerLine, int depth)
        {
            if (header.Inline is { Length: > 0 })
            {
                if (header.Fields is not null)
                {
                    throw Error("a fields-bearing header carries no inline values", headerLine);
                }

                var values = SplitCells(header.Inline, header.Delimiter, headerLine);
                CheckCount(header.Length, values.Count, headerLine, "values");
                EnsureNoChildren(depth);
                return new JsonArray(values.Select(v => ParsePrimitive(v, headerLine)).ToArray());
            }

            var array = new JsonArray();
            var spanStart = _pos;
            if (header.Fields is not null)
            {
                var width = LeafCount(header.Fields);
                while (_pos < _lines.Count && _lines[_pos].Depth == depth + 1 && IsRow(_lines[_pos].Content, header.Delimiter))
                {
                    var row = _lines[_pos++];
                    var cells = SplitCells(row.Content, header.Delimiter, row);
                    if (cells.Count != width)
                    {
                        throw Error($"row has {cells.Count} cells but the header declares {width} fields", row);
                    }

                    var index = 0;
                    array.Add(BuildRow(header.Fields, cells, ref index, row));
                }

                CheckCount(header.Length, array.Count, headerLine, "rows");
            }
            else
            {
                while (_pos < _lines.Count && _lines[_pos].Depth == depth + 1 && IsListItem(_lines[_pos].Content))
                {
                    array.Add(ParseListItem(_lines[_pos++], depth + 1));
                }

                CheckCount(header.Length, array.Count, headerLine, "items");
            }

            CheckBlankLines(spanStart);
            EnsureNoChildren(depth);
            return array;
        }

        private JsonObject ParseKeyedBody(Header header, Line headerLine, int depth)
        {
            if (header.Inline is { Length: > 0 })
            {
                throw Error("a keyed header carries no inline entries", headerLine);
            }

            var obj = new JsonObject();
            var width = LeafCount(header.Fields!);
            var spanStart = _pos;
            var count = 0;
            while (_pos < _lines.Count && _lines[_pos].Depth == depth + 1)
            {
                var row = _lines[_pos++];
                var colon = FindUnquotedColon(row.Content);
                if (colon < 0)
                {
                    throw Error("an entry row needs 'key: cells'", row);
                }

                var keyText = row.Content[..colon].Trim(' ');
                var key = keyText.StartsWith('"') ? ParseQuotedExact(keyText, row) : keyText;
                var cellText = row.Content[(colon + 1)..];
                var cells = cellText.Trim(' ').Length == 0 ? [] : SplitCells(cellText, header.Delimiter, row);
                if (cells.Count != width)
                {
                    throw Error($"entry has {cells.Count} cells but the header declares {width} fields", row);
                }

                var index = 0;
                Add(obj, key, BuildRow(header.Fields!, cells, ref index, row), row);
                count++;
            }

            CheckCount(header.Length, count, headerLine, "entries");
            CheckBlankLines(spanStart);
            return obj;
        }

        private JsonNode? ParseListItem(Line line, int depth)
        {
            var content = line.Content == "-" ? string.Empty : line.Content[2..];
            if (content.Trim(' ').Length == 0)
            {
                return new JsonObject();
            }

            if (content == "[]")
            {
                return new JsonArray();
            }

            if (content.StartsWith('[') && TryParseHeader(line, content, depth, out var header) && header is not null)
            {
                if (header.Fields is not null || header.Keyed)
                {
                    throw Error("a keyless fields-bearing or keyed header is not valid as a list item", line);
                }

                return ParseArrayBody(header, line, depth);
            }

            if (FindUnquotedColon(content) < 0)
            {
                EnsureNoChildren(depth);
                return ParsePrimitive(content.Trim(' '), line);
            }

            // An object item: the first field is on the hyphen line (children at depth + 2), siblings at depth + 1.
            var obj = new JsonObject();
            var (key, value) = ParseField(line, content, depth + 1);
            Add(obj, key, value, line);
            while (_pos < _lines.Count && _lines[_pos].Depth == depth + 1)
            {
                var next = _lines[_pos++];
                var (k, v) = ParseField(next, next.Content, depth + 1);
                Add(obj, k, v, next);
            }

            EnsureNoChildren(depth);
            return obj;
        }

        private JsonObject BuildRow(IReadOnlyList<HeaderField> fields, List<string> cells, ref int index, Line line)
        {
            var obj = new JsonObject();
            foreach (var field in fields)
            {
                JsonNode? value = field.Children is null
                    ? ParsePrimitive(cells[index++], line)
                    : BuildRow(field.Children, cells, ref index, line);
                obj[field.Name] = value; // duplicate names (non-strict only) resolve last-write-wins
            }

            return obj;
        }

        private void CheckCount(int declared, int actual, Line line, string what)
        {
            if (_strict && declared != actual)
            {
                throw Error($"header declares {declared} {what} but {actual} were found", line);
            }
        }

        private void CheckBlankLines(int spanStart)
        {
            if (!_strict)
            {
                return;
            }

            for (var i = spanStart + 1; i < _pos; i++)
            {
                if (_lines[i].BlankBefore)
                {
                    throw Error("blank lines are not allowed inside an array", _lines[i]);
                }
            }
        }

        private void Add(JsonObject obj, string key, JsonNode? value, Line line)
        {
            if (obj.ContainsKey(key))
            {
                if (_strict)
                {
                    throw Error($"duplicate key '{key}'", line);
                }

                obj.Remove(key);
            }

            obj[key] = value;
        }

        /// <summary>Reads the key at the start of <paramref name="content"/>; returns it and the text after it.</summary>
        private (string Key, string Remainder) ReadKey(Line line, string content)
        {
            if (content.StartsWith('"'))
            {
                var end = FindClosingQuote(content, 0, line);
                return (Unescape(content[1..end], line), content[(end + 1)..]);
            }

            var i = 0;
            while (i < content.Length && content[i] is not ':' and not '[')
            {
                i++;
            }

            if (i == content.Length)
            {
                throw Error("expected 'key: value'", line);
            }

            return (content[..i].TrimEnd(' '), content[i..]);
        }

        /// <summary>Parses <c>[N(:)(delim)]({fields}):inline</c> starting at <paramref name="text"/>.</summary>
        private bool TryParseHeader(Line line, string text, int depth, out Header? header, string? key = null)
        {
            header = null;
            var close = text.IndexOf(']', StringComparison.Ordinal);
            var valid = close > 0;
            var length = 0;
            var keyed = false;
            var delimiter = ',';
            if (valid)
            {
                var inside = text.AsSpan(1, close - 1);
                var digits = 0;
                while (digits < inside.Length && char.IsAsciiDigit(inside[digits]))
                {
                    digits++;
                }

                var tail = inside[digits..];
                if (tail.StartsWith(":"))
                {
                    keyed = true;
                    tail = tail[1..];
                }

                valid = digits > 0 && !(digits > 1 && inside[0] == '0') && tail.Length <= 1 &&
                        (tail.Length == 0 || tail[0] is '\t' or '|') &&
                        int.TryParse(inside[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out length);
                if (valid && tail.Length == 1)
                {
                    delimiter = tail[0];
                }
            }

            var pos = close + 1;
            List<HeaderField>? fields = null;
            if (valid && pos < text.Length && text[pos] == '{')
            {
                var fieldsEnd = FindMatchingBrace(text, pos);
                if (fieldsEnd < 0)
                {
                    throw Error("unmatched '{' in the fields segment", line);
                }

                fields = ParseFields(text[(pos + 1)..fieldsEnd], delimiter, line);
                pos = fieldsEnd + 1;
            }

            valid = valid && pos < text.Length && text[pos] == ':' && (!keyed || fields is not null);
            if (!valid)
            {
                if (_strict || key is null)
                {
                    if (key is null && !_strict && FindUnquotedColon(text) >= 0)
                    {
                        return false;
                    }

                    throw Error("malformed array header", line);
                }

                return false;
            }

            var inline = text[(pos + 1)..].Trim(' ');
            header = new Header(key, length, keyed, delimiter, fields, inline);
            return true;
        }

        private List<HeaderField> ParseFields(string segment, char delimiter, Line line)
        {
            var fields = new List<HeaderField>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            var i = 0;
            while (true)
            {
                while (i < segment.Length && segment[i] == ' ')
                {
                    i++;
                }

                string name;
                if (i < segment.Length && segment[i] == '"')
                {
                    var end = FindClosingQuote(segment, i, line);
                    name = Unescape(segment[(i + 1)..end], line);
                    i = end + 1;
                }
                else
                {
                    var start = i;
                    while (i < segment.Length && segment[i] != delimiter && segment[i] != '{')
                    {
                        i++;
                    }

                    name = segment[start..i].Trim(' ');
                    if (name.Length == 0)
                    {
                        throw Error("empty field name in the fields segment", line);
                    }
                }

                List<HeaderField>? children = null;
                if (i < segment.Length && segment[i] == '{')
                {
                    var end = FindMatchingBrace(segment, i);
                    if (end < 0)
                    {
                        throw Error("unmatched '{' in the fields segment", line);
                    }

                    children = ParseFields(segment[(i + 1)..end], delimiter, line);
                    i = end + 1;
                }

                if (!names.Add(name) && _strict)
                {
                    throw Error($"duplicate field name '{name}'", line);
                }

                fields.Add(new HeaderField(name, children));
                while (i < segment.Length && segment[i] == ' ')
                {
                    i++;
                }

                if (i >= segment.Length)
                {
                    return fields;
                }

                if (segment[i] != delimiter)
                {
                    throw Error("unexpected character in the fields segment", line);
                }

                i++;
            }
        }

        private static int LeafCount(IReadOnlyList<HeaderField> fields) =>
            fields.Sum(f => f.Children is null ? 1 : LeafCount(f.Children));

        private static bool IsListItem(string content) => content == "-" || content.StartsWith("- ", StringComparison.Ordinal);

        /// <summary>At row depth, a line is a row unless an unquoted colon comes before any unquoted delimiter.</summary>
        private static bool IsRow(string content, char delimiter)
        {
            var inQuotes = false;
            for (var i = 0; i < content.Length; i++)
            {
                var c = content[i];
                if (inQuotes)
                {
                    if (c == '\\')
                    {
                        i++;
                    }
                    else if (c == '"')
                    {
                        inQuotes = false;
                    }
                }
                else if (c == '"')
                {
                    inQuotes = true;
                }
                else if (c == delimiter)
                {
                    return true;
                }
                else if (c == ':')
                {
                    return false;
                }
            }

            return true;
        }

        private List<string> SplitCells(string text, char delimiter, Line line)
        {
            var cells = new List<string>();
            var start = 0;
            var inQuotes = false;
            for (var i = 0; i < text.Length; i++)
            {
                var c = text[i];
                if (inQuotes)
                {
                    if (c == '\\')
                    {
                        i++;
                    }
                    else if (c == '"')
                    {
                        inQuotes = false;
                    }
                }
                else if (c == '"')
                {
                    inQuotes = true;
                }
                else if (c == delimiter)
                {
                    cells.Add(TrimSpaces(text[start..i]));
                    start = i + 1;
                }
            }

            if (inQuotes)
            {
                throw Error("unterminated string", line);
            }

            cells.Add(TrimSpaces(text[start..]));
            return cells;
        }

        private static string TrimSpaces(string s) => s.Trim(' ');

        private JsonNode? ParsePrimitive(string token, Line line)
        {
            if (token.StartsWith('"'))
            {
                return JsonValue.Create(ParseQuotedExact(token, line));
            }

            switch (token)
            {
                case "true": return JsonValue.Create(true);
                case "false": return JsonValue.Create(false);
                case "null": return null;
            }

            if (ToonNumber.IsDecodableNumber(token))
            {
                return JsonNode.Parse(ToonNumber.Canonicalize(token));
            }

            return JsonValue.Create(token);
        }

        private string ParseQuotedExact(string token, Line line)
        {
            var end = FindClosingQuote(token, 0, line);
            if (end != token.Length - 1)
            {
                throw Error("unexpected text after a quoted string", line);
            }

            return Unescape(token[1..end], line);
        }

        private int FindClosingQuote(string text, int open, Line line)
        {
            for (var i = open + 1; i < text.Length; i++)
            {
                if (text[i] == '\\')
                {
                    i++;
                }
                else if (text[i] == '"')
                {
                    return i;
                }
            }

            throw Error("unterminated string", line);
        }

        private static int FindMatchingBrace(string text, int open)
        {
            var depth = 0;
            var inQuotes = false;
            for (var i = open; i < text.Length; i++)
            {
                var c = text[i];
                if (inQuotes)
                {
                    if (c == '\\')
                    {
                        i++;
                    }
                    else if (c == '"')
                    {
                        inQuotes = false;
                    }

                    continue;
                }

                switch (c)
                {
                    case '"': inQuotes = true; break;
                    case '{': depth++; break;
                    case '}':
                        if (--depth == 0)
                        {
                            return i;
                        }

                        break;
                }
            }

            return -1;
        }

        private static int FindUnquotedColon(string text)
        {
            var inQuotes = false;
            for (var i = 0; i < text.Length; i++)
            {
                var c = text[i];
                if (inQuotes)
                {
                    if (c == '\\')
                    {
                        i++;
                    }
                    else if (c == '"')
                    {
                        inQuotes = false;
                    }
                }
                else if (c == '"')
                {
                    inQuotes = true;
                }
                else if (c == ':')
                {
                    return i;
                }
            }

            return -1;
        }

        private string Unescape(string body, Line line)
        {
            if (!body.Contains('\\', StringComparison.Ordinal))
            {
                return body;
            }

            var sb = new StringBuilder(body.Length);
            for (var i = 0; i < body.Length; i++)
            {
                var c = body[i];
                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }

                if (++i >= body.Length)
                {
                    throw Error("dangling escape", line);
                }

                switch (body[i])
                {
                    case '\\': sb.Append('\\'); break;
                    case '"': sb.Append('"'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        {
                            var unit = ReadHex(body, i + 1, line);
                            i += 4;
                            if (char.IsHighSurrogate(unit))
                            {
                                if (i + 6 < body.Length && body[i + 1] == '\\' && body[i + 2] == 'u')
                                {
                                    var low = ReadHex(body, i + 3, line);
                                    if (!char.IsLowSurrogate(low))
                                    {
                                        throw Error("lone surrogate in \\u escape", line);
                                    }

                                    sb.Append(unit).Append(low);
                                    i += 6;
                                    break;
                                }

                                throw Error("lone surrogate in \\u escape", line);
                            }

                            if (char.IsLowSurrogate(unit))
                            {
                                throw Error("lone surrogate in \\u escape", line);
                            }

                            sb.Append(unit);
                            break;
                        }

                    default:
                        throw Error($"invalid escape '\\{body[i]}'", line);
                }
            }

            return sb.ToString();
        }

        private char ReadHex(string body, int start, Line line)
        {
            if (start + 4 > body.Length ||
                !int.TryParse(body.AsSpan(start, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
            {
                throw Error("\\u must be followed by four hex digits", line);
            }

            return (char)value;
        }

        private static ToonFormatException Error(string message, Line line) => new(message, line.Number);
    }
}
