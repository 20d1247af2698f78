namespace TokenGateway.Core.Optimization.Stages;

/// <summary>Okapi BM25 (k1 = 1.5, b = 0.75) over lowercase alphanumeric terms, with a small English stop-list.</summary>
internal static class Bm25
{
    private const double K1 = 1.5;
    private const double B = 0.75;

    private static readonly HashSet<string> _stopWords = new(StringComparer.Ordinal)
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how", "i", "if", "in", "is",
        "it", "my", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "which", "who", "why",
        "will", "with", "you", "your", "me", "we", "our", "should", "would", "could", "there", "these", "those", "than",
    };

    /// <summary>Scores each document against the query; higher is more relevant.</summary>
    public static double[] Score(string query, IReadOnlyList<string> documents)
    {
        var queryTerms = Terms(query).Distinct(StringComparer.Ordinal).ToList();
        var docs = documents.Select(d => Terms(d).ToList()).ToList();
        var scores = new double[docs.Count];
        if (queryTerms.Count == 0 || docs.Count == 0)
        {
            return scores;
        }

        var averageLength = Math.Max(1, docs.Average(d => d.Count));
        var frequencies = docs.Select(d => d.GroupBy(t => t, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal)).ToList();
        foreach (var term in queryTerms)
        {
            var df = frequencies.Count(f => f.ContainsKey(term));
            if (df == 0)
            {
                continue;
            }

            var idf = Math.Log(1 + ((docs.Count - df + 0.5) / (df + 0.5)));
            for (var i = 0; i < docs.Count; i++)
            {
                if (frequencies[i].TryGetValue(term, out var tf))
                {
                    scores[i] += idf * tf * (K1 + 1) / (tf + (K1 * (1 - B + (B * docs[i].Count / averageLength))));
                }
            }
        }

        return scores;
    }

    /// <summary>
    /// The query's scores scaled to a best of 1, plus <paramref name="recentWeight"/> times the same for
    /// <paramref name="recent"/> (earlier turns or recent activity) when it is not blank.
    /// </summary>
    public static double[] Blend(string query, string recent, IReadOnlyList<string> documents, double recentWeight)
    {
        var scores = Normalized(Score(query, documents));
        if (!string.IsNullOrWhiteSpace(recent))
        {
            var related = Normalized(Score(recent, documents));
            for (var i = 0; i < scores.Length; i++)
            {
                scores[i] += recentWeight * related[i];
            }
        }

        return scores;
    }

    private static double[] Normalized(double[] scores)
    {
        var max = scores.Length == 0 ? 0 : scores.Max();
        if (max > 0)
        {
            for (var i = 0; i < scores.Length; i++)
            {
                scores[i] /= max;
            }
        }

        return scores;
    }

    public static IEnumerable<string> Terms(string text)
    {
        var start = -1;
        for (var i = 0; i <= text.Length; i++)
        {
            var isTermChar = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (isTermChar && start < 0)
            {
                start = i;
            }
            else if (!isTermChar && start >= 0)
            {
                var term = text[start..i].ToLowerInvariant();
                start = -1;
                if (!_stopWords.Contains(term))
                {
                    yield return term;
                }
            }
        }
    }
}
