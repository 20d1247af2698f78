using System.Text;
using System.Text.Json;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>The result of a free local repair: the repaired text and the fixes applied.</summary>
public sealed record LocalRepair(string Text, IReadOnlyList<string> Fixes);

/// <summary>
/// Free repairs (no model call) for the usual ways a model wraps or bends JSON: code fences and prose around it,
/// typographic quotes used as JSON quotes, trailing commas. Applied only when the text does not parse as it is.
/// </summary>
public static class LocalJsonRepair
{
    /// <summary>Returns the repaired text when a fix made it parse, else null (nothing to repair, or beyond local repair).</summary>
    public static LocalRepair? TryRepair(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (Parses(text))
        {
            return null;
        }

        var fixes = new List<string>();
        var current = text;

        var unfenced = StripFence(current);
        if (unfenced is not null)
        {
            fixes.Add("code_fence");
            current = unfenced;
            if (Parses(current))
            {
                return new LocalRepair(current, fixes);
            }
        }

        var extracted = ExtractJson(current);
        if (extracted is not null && extracted.Length != current.Length)
        {
            fixes.Add("surrounding_text");
            current = extracted;
            if (Parses(current))
            {
                return new LocalRepair(current, fixes);
            }
        }

        var quoted = ReplaceSmartQuotes(current);
        if (!ReferenceEquals(quoted, current))
        {
            fixes.Add("smart_quotes");
            current = quoted;
            if (Parses(current))
            {
                return new LocalRepair(current, fixes);
            }
        }

        var commas = RemoveTrailingCommas(current);
        if (!ReferenceEquals(commas, current))
        {
            fixes.Add("trailing_commas");
            current = commas;
        }

        return fixes.Count > 0 && Parses(current) ? new LocalRepair(current, fixes) : null;
    }

    /// <summary>True when <paramref name="text"/> is one well-formed JSON value.</summary>
    public static bool Parses(string text)
    {
        try
        {
            using var _ = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static string? StripFence(string text)
    {
        var start = text.IndexOf("```", StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        var contentStart = text.IndexOf('\n', start);
        if (contentStart < 0)
        {
            return null;
        }

        var end = text.IndexOf("```", contentStart, StringComparison.Ordinal);
        return end < 0 ? text[(contentStart + 1)..].Trim() : text[(contentStart + 1)..end].Trim();
    }

    // The first '{' or '[' to its matching closer (string-aware), so prose before and after is dropped.
    private static string? ExtractJson(string text)
    {
        var start = text.IndexOfAny(['{', '[']);
        if (start < 0)
        {
            return null;
        }

        var depth = 0;
        var inString = false;
        var escaped = false;
        for (var i = start; i < text.Length; i++)
        {
            var c = text[i];
            if (inString)
            {
                if (escaped)
                {
                    escaped = false;
                }
                else if (c == '\\')
                {
                    escaped = true;
                }
                else if (c is '"' or '\u201D')
                {
                    inString = false;
                }

                continue;
            }

            switch (c)
            {
                case '"' or '\u201C':
                    inString = true;
                    break;
                case '{' or '[':
                    depth++;
                    break;
                case '}' or ']':
                    depth--;
                    if (depth == 0)
                    {
                        return text[start..(i + 1)];
                    }

                    break;
            }
        }

        return text[start..].TrimEnd();
    }

    // Typographic double quotes outside JSON strings become JSON quotes; inside a string they are content and stay.
    private static string ReplaceSmartQuotes(string text)
    {
        if (text.IndexOfAny(['\u201C', '\u201D', '\u201E', '\u201F']) < 0)
        {
            return text;
        }

        var sb = new StringBuilder(text.Length);
        var inString = false;
        var opener = '"';
        var escaped = false;
        foreach (var c in text)
        {
            if (inString)
            {
                if (escaped)
                {
                    escaped = false;
                    sb.Append(c);
                }
                else if (c == '\\')
                {
                    escaped = true;
                    sb.Append(c);
                }
                else if ((opener == '"' && c == '"') || (opener != '"' && c is '\u201D' or '\u201C' or '\u201F'))
                {
                    inString = false;
                    sb.Append('"');
                }
                else if (c == '"')
                {
                    sb.Append("\\\""); // a plain quote inside a typographically quoted string is content
                }
                else
                {
                    sb.Append(c);
                }
            }
            else if (c is '"' or '\u201C' or '\u201D' or '\u201E' or '\u201F')
            {
                inString = true;
                opener = c;
                sb.Append('"');
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    private static string RemoveTrailingCommas(string text)
    {
        StringBuilder? sb = null;
        var inString = false;
        var escaped = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (inString)
            {
                if (escaped)
                {
                    escaped = false;
                }
                else if (c == '\\')
                {
                    escaped = true;
                }
                else if (c == '"')
                {
                    inString = false;
                }

                sb?.Append(c);
                continue;
            }

            if (c == '"')
            {
                inString = true;
            }
            else if (c == ',')
            {
                var j = i + 1;
                while (j < text.Length && char.IsWhiteSpace(text[j]))
                {
                    j++;
                }

                if (j < text.Length && text[j] is '}' or ']')
                {
                    sb ??= new StringBuilder(text, 0, i, text.Length);
                    continue;
                }
            }

            sb?.Append(c);
        }

        return sb?.ToString() ?? text;
    }
}
