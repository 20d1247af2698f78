using System.Text;

namespace TokenGateway.Core.Optimization.Toon;

/// <summary>Canonical TOON number text (spec §2) computed from the JSON literal, so no precision is ever lost.</summary>
internal static class ToonNumber
{
    /// <summary>
    /// Formats a JSON number literal canonically: plain decimal for 0 and 1e-6 ≤ |n| &lt; 1e21 (no exponent, no
    /// leading or trailing zeros, -0 → 0), lowercase exponent form with an explicit sign outside that range.
    /// </summary>
    public static string Canonicalize(ReadOnlySpan<char> literal)
    {
        var negative = false;
        var i = 0;
        if (i < literal.Length && (literal[i] == '-' || literal[i] == '+'))
        {
            negative = literal[i] == '-';
            i++;
        }

        var digits = new StringBuilder(literal.Length);
        var intDigits = 0;
        while (i < literal.Length && char.IsAsciiDigit(literal[i]))
        {
            digits.Append(literal[i++]);
            intDigits++;
        }

        if (i < literal.Length && literal[i] == '.')
        {
            i++;
            while (i < literal.Length && char.IsAsciiDigit(literal[i]))
            {
                digits.Append(literal[i++]);
            }
        }

        long exponent = 0;
        if (i < literal.Length && (literal[i] == 'e' || literal[i] == 'E'))
        {
            i++;
            var expNegative = false;
            if (i < literal.Length && (literal[i] == '-' || literal[i] == '+'))
            {
                expNegative = literal[i] == '-';
                i++;
            }

            while (i < literal.Length && char.IsAsciiDigit(literal[i]))
            {
                exponent = Math.Min(exponent * 10 + (literal[i++] - '0'), 1_000_000_000);
            }

            exponent = expNegative ? -exponent : exponent;
        }

        if (i != literal.Length)
        {
            throw new FormatException($"'{literal}' is not a JSON number.");
        }

        // value = 0.d1d2d3… × 10^point
        var point = intDigits + exponent;
        var lead = 0;
        while (lead < digits.Length && digits[lead] == '0')
        {
            lead++;
        }

        if (lead == digits.Length)
        {
            return "0";
        }

        var end = digits.Length;
        while (digits[end - 1] == '0')
        {
            end--;
        }

        var significant = digits.ToString(lead, end - lead);
        point -= lead;
        var sb = new StringBuilder(significant.Length + 8);
        if (negative)
        {
            sb.Append('-');
        }

        if (point >= -5 && point <= 21)
        {
            if (point <= 0)
            {
                sb.Append("0.").Append('0', (int)-point).Append(significant);
            }
            else if (point >= significant.Length)
            {
                sb.Append(significant).Append('0', (int)point - significant.Length);
            }
            else
            {
                sb.Append(significant, 0, (int)point).Append('.').Append(significant, (int)point, significant.Length - (int)point);
            }

            return sb.ToString();
        }

        sb.Append(significant[0]);
        if (significant.Length > 1)
        {
            sb.Append('.').Append(significant, 1, significant.Length - 1);
        }

        var e = point - 1;
        sb.Append('e').Append(e < 0 ? '-' : '+').Append(Math.Abs(e));
        return sb.ToString();
    }

    /// <summary>True when <paramref name="token"/> matches the decoder number grammar of spec §4.</summary>
    public static bool IsDecodableNumber(ReadOnlySpan<char> token)
    {
        var i = 0;
        if (i < token.Length && token[i] == '-')
        {
            i++;
        }

        var start = i;
        while (i < token.Length && char.IsAsciiDigit(token[i]))
        {
            i++;
        }

        var intLength = i - start;
        if (intLength == 0 || (intLength > 1 && token[start] == '0'))
        {
            return false;
        }

        if (i < token.Length && token[i] == '.')
        {
            i++;
            var fracStart = i;
            while (i < token.Length && char.IsAsciiDigit(token[i]))
            {
                i++;
            }

            if (i == fracStart)
            {
                return false;
            }
        }

        if (i < token.Length && (token[i] == 'e' || token[i] == 'E'))
        {
            i++;
            if (i < token.Length && (token[i] == '+' || token[i] == '-'))
            {
                i++;
            }

            var expStart = i;
            while (i < token.Length && char.IsAsciiDigit(token[i]))
            {
                i++;
            }

            if (i == expStart)
            {
                return false;
            }
        }

        return i == token.Length;
    }
}
