using System.Collections.Concurrent;
using System.Text;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Simulator.Generation;

/// <summary>
/// Builds deterministic English-looking text of an exact token count under a tiktoken encoding.
/// </summary>
/// <remarks>
/// Text is assembled from words that are one token each (with and without a leading space, capitalised or not, checked
/// against the real encoding at first use) and single-token periods. Tiktoken's pre-tokenizer splits at exactly those
/// boundaries, so the count is exact by construction; every result is still verified and repaired if it ever is not.
/// </remarks>
internal static class TextComposer
{
    private static readonly string[] _candidates =
    [
        "the", "model", "answer", "system", "request", "token", "data", "value", "result", "time", "service", "network",
        "server", "client", "simple", "clear", "quick", "small", "large", "good", "new", "first", "last", "next", "other",
        "is", "was", "are", "be", "can", "will", "should", "would", "may", "makes", "helps", "shows", "uses", "gives", "takes",
        "and", "but", "or", "so", "then", "also", "often", "usually", "still", "just", "only", "very", "more", "most",
        "in", "on", "at", "for", "with", "from", "by", "about", "into", "over", "after", "before", "under", "between",
        "this", "that", "these", "each", "every", "some", "many", "few", "all", "any", "our", "your", "their", "its",
        "people", "team", "user", "work", "world", "way", "day", "year", "part", "place", "case", "point", "group",
        "number", "problem", "fact", "idea", "plan", "level", "process", "method", "example", "report", "change",
        "question", "reason", "area", "line", "word", "page", "list", "table", "field", "state", "order", "price",
        "water", "light", "river", "city", "house", "road", "garden", "market", "music", "story", "book", "history",
        "make", "find", "keep", "help", "show", "build", "read", "write", "check", "start", "run", "move", "hold",
        "bring", "follow", "learn", "change", "create", "provide", "include", "continue", "consider", "explain",
        "important", "possible", "different", "common", "general", "public", "local", "special", "early", "recent",
        "strong", "better", "full", "open", "main", "final", "real", "true", "free", "easy", "short", "long", "high",
    ];

    private static readonly ConcurrentDictionary<string, string[]> _vocabularies = new(StringComparer.Ordinal);

    /// <summary>Text of exactly <paramref name="tokens"/> tokens under <paramref name="encoding"/>, chosen by <paramref name="seed"/>.</summary>
    public static TokenizedText Compose(string encoding, int tokens, ulong seed)
    {
        if (tokens <= 0)
        {
            return TokenizedText.Empty;
        }

        var words = Vocabulary(encoding);
        var rng = new SplitMix64(seed);
        var text = new StringBuilder(tokens * 7);
        var ends = new int[tokens];
        var sentenceLeft = rng.Next(6, 14);
        var sentenceStart = true;
        for (var i = 0; i < tokens; i++)
        {
            var remaining = tokens - i;
            if (!sentenceStart && (sentenceLeft == 0 || remaining == 1))
            {
                text.Append('.');
                sentenceStart = true;
                sentenceLeft = rng.Next(6, 14);
            }
            else
            {
                var word = words[rng.Next(0, words.Length)];
                if (text.Length > 0)
                {
                    text.Append(' ');
                }

                if (sentenceStart)
                {
                    text.Append(char.ToUpperInvariant(word[0])).Append(word, 1, word.Length - 1);
                }
                else
                {
                    text.Append(word);
                }

                sentenceStart = false;
                sentenceLeft--;
            }

            ends[i] = text.Length;
        }

        var result = new TokenizedText(text.ToString(), ends);
        return TiktokenTokenizerRegistry.Shared.Get(encoding).CountTokens(result.Text) == tokens ? result : Repair(encoding, result.Text, tokens);
    }

    private static TokenizedText Repair(string encoding, string text, int tokens)
    {
        var current = TokenizedText.FromText(encoding, text);
        for (var attempt = 0; attempt < 64 && current.TokenCount != tokens; attempt++)
        {
            current = current.TokenCount > tokens
                ? current.Truncate(encoding, tokens)
                : TokenizedText.FromText(encoding, current.Text + " the");
        }

        return current;
    }

    private static string[] Vocabulary(string encoding) => _vocabularies.GetOrAdd(encoding, static e =>
    {
        var tokenizer = TiktokenTokenizerRegistry.Shared.Get(e);
        var words = _candidates.Distinct(StringComparer.Ordinal).Where(w =>
        {
            var cap = char.ToUpperInvariant(w[0]) + w[1..];
            return tokenizer.CountTokens(" " + w) == 1 && tokenizer.CountTokens(cap) == 1 && tokenizer.CountTokens(" " + cap) == 1 &&
                tokenizer.CountTokens(w + ".") == 2;
        }).ToArray();
        return words.Length == 0 ? ["the"] : words;
    });
}
