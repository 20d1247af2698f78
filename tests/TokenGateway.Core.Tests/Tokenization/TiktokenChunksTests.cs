using System.Text.Json.Nodes;
using CsCheck;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Tokenization;

public sealed class TiktokenChunksTests
{
    private static readonly string[] _encodings = ["o200k_base", "cl100k_base", "claude"];

    // Fragments chosen around the chunk rule: line feeds before printable ASCII, '/', '\r', spaces, contractions,
    // punctuation runs, digits, non-ASCII letters and marks, and a special token.
    private static readonly string[] _fragments =
    [
        "\n", "\n\n", "\r\n", " ", "  ", "\t", "/", "//", "a", "Hello", "SKU", "'s", "'ll", "it's", ":", "\":\"", "{", "}", "[", "]",
        ",", "-", "```", "~~~", "json", "123", "4567", "é", "e\u0301", "日本", "<|endoftext|>", "\u00a0", "\u2028", "#", "*", "|",
    ];

    [Fact]
    public void Count_CorpusTexts_EqualsRegistryCount()
    {
        var texts = Optimization.PipelineGoldenOutputTests.CorpusJsonFiles().Select(File.ReadAllText)
            .Concat(TokenGateway.LoadHarness.Payloads.All().SelectMany(p => Strings(JsonNode.Parse(p.Body))))
            .ToList();
        foreach (var encoding in _encodings)
        {
            foreach (var text in texts)
            {
                Assert.Equal(Oracle(encoding, text), TiktokenTokenizerRegistry.Shared.Count(encoding, text)); // chunked from 256 chars
            }
        }
    }

    [Fact]
    public void Count_RandomLineStructuredText_EqualsRegistryCount()
    {
        Gen.Int[0, _fragments.Length - 1].Array[80, 1200]
            .Select(ix => string.Concat(ix.Select(i => _fragments[i])))
            .Sample(text =>
            {
                foreach (var encoding in _encodings)
                {
                    Assert.Equal(Oracle(encoding, text), TiktokenTokenizerRegistry.Shared.Count(encoding, text));
                }
            }, iter: 300);
    }

    [Fact]
    public void NextBoundary_LineStartingWithPrintableAscii_CutsBeforeIt()
    {
        const string text = "intro:\n  indented\n/path\nNext line\n";
        var first = TiktokenChunks.NextBoundary(text, 0);
        Assert.Equal(text.IndexOf("Next", StringComparison.Ordinal), first);
        Assert.Equal(text.Length, TiktokenChunks.NextBoundary(text, first));
    }

    /// <summary>The whole text counted in one tokenizer call, scaled as the registry scales the Claude estimate.</summary>
    private static int Oracle(string encoding, string text)
    {
        var raw = text.Length == 0 ? 0 : TiktokenTokenizerRegistry.Shared.Get(encoding).CountTokens(text);
        return TiktokenTokenizerRegistry.IsEstimate(encoding) ? (int)Math.Ceiling(raw * TiktokenTokenizerRegistry.ClaudeCalibration) : raw;
    }

    private static IEnumerable<string> Strings(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => Strings(p.Value)),
        JsonArray a => a.SelectMany(Strings),
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        _ => [],
    };
}
