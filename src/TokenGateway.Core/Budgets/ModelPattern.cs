namespace TokenGateway.Core.Budgets;

/// <summary>A case-insensitive model name pattern where <c>*</c> matches any run of characters.</summary>
public sealed class ModelPattern
{
    private readonly string[] _parts;
    private readonly bool _anchoredStart;
    private readonly bool _anchoredEnd;

    /// <summary>Compiles <paramref name="pattern"/> (e.g. <c>gpt-4o*</c>, <c>claude-*</c>, <c>*</c>).</summary>
    public ModelPattern(string pattern)
    {
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        Pattern = pattern;
        _anchoredStart = pattern[0] != '*';
        _anchoredEnd = pattern[^1] != '*';
        _parts = pattern.Split('*', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>The pattern text.</summary>
    public string Pattern { get; }

    /// <summary>True when <paramref name="model"/> matches the pattern (ordinal, case-insensitive).</summary>
    public bool IsMatch(string model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (_parts.Length == 0)
        {
            // Only stars: matches everything.
            return true;
        }

        var span = model.AsSpan();
        var position = 0;
        for (var i = 0; i < _parts.Length; i++)
        {
            var part = _parts[i].AsSpan();
            var isFirst = i == 0;
            var isLast = i == _parts.Length - 1;
            if (isFirst && _anchoredStart)
            {
                if (!span.StartsWith(part, StringComparison.OrdinalIgnoreCase))
                {
                    return false;
                }

                position = part.Length;
                if (isLast && _anchoredEnd)
                {
                    return position == span.Length;
                }

                continue;
            }

            if (isLast && _anchoredEnd)
            {
                // The last literal must sit at the very end, after everything matched so far.
                return span.Length - part.Length >= position && span.EndsWith(part, StringComparison.OrdinalIgnoreCase);
            }

            var found = span[position..].IndexOf(part, StringComparison.OrdinalIgnoreCase);
            if (found < 0)
            {
                return false;
            }

            position += found + part.Length;
        }

        return true;
    }

    /// <inheritdoc />
    public override string ToString() => Pattern;
}

/// <summary>A compiled list of <see cref="ModelPattern"/>s; matches when any pattern matches.</summary>
public sealed class ModelPatternSet
{
    private readonly ModelPattern[] _patterns;

    /// <summary>Compiles the given patterns (blank entries are ignored).</summary>
    public ModelPatternSet(IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        _patterns = patterns.Where(p => !string.IsNullOrWhiteSpace(p)).Distinct(StringComparer.OrdinalIgnoreCase).Select(p => new ModelPattern(p)).ToArray();
    }

    /// <summary>The pattern texts.</summary>
    public IReadOnlyList<string> Patterns => _patterns.Select(p => p.Pattern).ToArray();

    /// <summary>True when any pattern matches <paramref name="model"/>.</summary>
    public bool IsMatch(string model)
    {
        foreach (var pattern in _patterns)
        {
            if (pattern.IsMatch(model))
            {
                return true;
            }
        }

        return false;
    }
}
