using System.Globalization;
using System.Text;

namespace TokenGateway.Core.Optimization.Toon;

/// <summary>String and key quoting and escaping rules of TOON spec v4.0 §7.</summary>
internal static class ToonStrings
{
    /// <summary>Encodes a string value, quoting it when §7.2 requires it under <paramref name="delimiter"/>.</summary>
    public static string EncodeValue(string value, char delimiter) =>
        NeedsQuotes(value, delimiter) ? Quote(value) : value;

    /// <summary>Encodes a key: unquoted only when it matches <c>^[A-Za-z_][A-Za-z0-9_.]*$</c> (§7.3).</summary>
    public static string EncodeKey(string key) => IsIdentifier(key) ? key : Quote(key);

    public static bool IsIdentifier(string key)
    {
        if (key.Length == 0 || !(char.IsAsciiLetter(key[0]) || key[0] == '_'))
        {
            return false;
        }

        foreach (var c in key)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_' || c == '.'))
            {
                return false;
            }
        }

        return true;
    }

    public static bool NeedsQuotes(string value, char delimiter)
    {
        if (value.Length == 0 || value is "true" or "false" or "null")
        {
            return true;
        }

        if (value[0] is ' ' or '\t' or '-' or '#' || value[^1] is ' ' or '\t')
        {
            return true;
        }

        foreach (var c in value)
        {
            if (c < 0x20 || c is ':' or '"' or '\\' or '[' or ']' or '{' or '}' || c == delimiter)
            {
                return true;
            }
        }

        return LooksNumeric(value);
    }

    /// <summary><c>/^[+-]?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?$/i</c> — strings a decoder could read as numbers.</summary>
    private static bool LooksNumeric(string value)
    {
        var i = 0;
        if (value[i] is '+' or '-')
        {
            i++;
        }

        var start = i;
        while (i < value.Length && char.IsAsciiDigit(value[i]))
        {
            i++;
        }

        if (i == start)
        {
            return false;
        }

        if (i < value.Length && value[i] == '.')
        {
            var fractionStart = ++i;
            while (i < value.Length && char.IsAsciiDigit(value[i]))
            {
                i++;
            }

            if (i == fractionStart)
            {
                return false;
            }
        }

        if (i < value.Length && value[i] is 'e' or 'E')
        {
            i++;
            if (i < value.Length && value[i] is '+' or '-')
            {
                i++;
            }

            var exponentStart = i;
            while (i < value.Length && char.IsAsciiDigit(value[i]))
            {
                i++;
            }

            if (i == exponentStart)
            {
                return false;
            }
        }

        return i == value.Length;
    }

    public static string Quote(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '"': sb.Append("\\\""); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }
}
