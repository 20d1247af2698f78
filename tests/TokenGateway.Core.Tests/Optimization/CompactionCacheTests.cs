using System.Text.Json.Nodes;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Optimization.Stages;
using TokenGateway.Core.Tests.Infrastructure;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Optimization;

[Collection(nameof(SerialCollection))]
public sealed class CompactionCacheTests
{
    private static readonly CompactOptions _options = new();

    [Fact]
    public void Compact_SameTextTwice_SecondIsAHitWithTheSameResult()
    {
        CompactionCache.Clear();
        var calls = 0;
        var compactor = new TextCompactor(_options, t => { calls++; return TiktokenTokenizerRegistry.Shared.Count("o200k_base", t); });
        var text = "Records:\n" + Records(40).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });

        var first = CompactionCache.Compact(compactor, _options, "o200k_base", text);
        var countingCalls = calls;
        var second = CompactionCache.Compact(compactor, _options, "o200k_base", text);

        Assert.NotEqual(text, first); // the indented JSON was compacted
        Assert.Equal(new TextCompactor(_options, t => TiktokenTokenizerRegistry.Shared.Count("o200k_base", t)).Compact(text), first);
        Assert.Same(first, second);
        Assert.True(countingCalls > 0);
        Assert.Equal(countingCalls, calls); // the hit did no compaction work
        Assert.Equal(1, CompactionCache.Count);
    }

    [Fact]
    public void Compact_SameRecordsUnderANewQuestion_ReusesTheJsonBlockAndMatchesAFreshCompaction()
    {
        CompactionCache.Clear();
        var records = Records(40).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        var calls = 0;
        var compactor = new TextCompactor(_options, t => { calls++; return TiktokenTokenizerRegistry.Shared.Count("o200k_base", t); }, "o200k_base");
        var first = "Retrieved records (JSON):\n" + records + "\n\nQuestion: which are low on stock? (request 1)";
        var second = "Retrieved records (JSON):\n" + records + "\n\nQuestion: which are in emea? (request 2)";

        var a = CompactionCache.Compact(compactor, _options, "o200k_base", first);
        var callsForFirst = calls;
        calls = 0;
        var b = CompactionCache.Compact(compactor, _options, "o200k_base", second);

        Assert.Equal(Compactor(_options, "o200k_base").Compact(first), a);
        Assert.Equal(Compactor(_options, "o200k_base").Compact(second), b);
        Assert.NotEqual(first, a);
        Assert.True(calls < callsForFirst, $"second message counted {calls} texts, the first {callsForFirst}: the JSON block was not reused");
        Assert.Equal(3, CompactionCache.Count); // two messages, one JSON block
    }

    [Fact]
    public void Compact_OtherOptionsOrEncoding_AreSeparateEntries()
    {
        CompactionCache.Clear();
        var text = "Records:\n" + Records(30).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        var noToon = _options with { Toon = false };

        var toon = CompactionCache.Compact(Compactor(_options, "o200k_base"), _options, "o200k_base", text);
        var json = CompactionCache.Compact(Compactor(noToon, "o200k_base"), noToon, "o200k_base", text);
        var cl100k = CompactionCache.Compact(Compactor(_options, "cl100k_base"), _options, "cl100k_base", text);

        Assert.Equal(Compactor(_options, "o200k_base").Compact(text), toon);
        Assert.Equal(Compactor(noToon, "o200k_base").Compact(text), json);
        Assert.Equal(Compactor(_options, "cl100k_base").Compact(text), cl100k);
        Assert.NotEqual(toon, json);
        Assert.Equal(3, CompactionCache.Count);
    }

    [Fact]
    public void Compact_UnchangedText_ReturnsTheTextItself()
    {
        CompactionCache.Clear();
        var prose = string.Concat(Enumerable.Repeat("Plain prose with nothing to compact. ", 20)).TrimEnd();

        var first = CompactionCache.Compact(Compactor(_options, "o200k_base"), _options, "o200k_base", prose);
        var second = CompactionCache.Compact(Compactor(_options, "o200k_base"), _options, "o200k_base", prose);

        Assert.Equal(prose, first);
        Assert.Same(prose, second); // a hit on "unchanged" hands back the caller's own text
    }

    [Fact]
    public void Compact_ManyDistinctTexts_StaysWithinTwoGenerations()
    {
        CompactionCache.Clear();
        var compactor = new TextCompactor(_options with { Json = false, Toon = false }, t => t.Length);
        var filler = new string('a', 50_000);

        for (var i = 0; i < 200; i++)
        {
            CompactionCache.Compact(compactor, _options, "o200k_base", i.ToString(System.Globalization.CultureInfo.InvariantCulture) + filler);
        }

        Assert.InRange(CompactionCache.Chars, 1, 2 * CompactionCache.GenerationChars);
        CompactionCache.Clear();
    }

    private static TextCompactor Compactor(CompactOptions options, string encoding) =>
        new(options, t => TiktokenTokenizerRegistry.Shared.Count(encoding, t));

    private static JsonArray Records(int n) => new(Enumerable.Range(0, n).Select(i => (JsonNode)new JsonObject
    {
        ["id"] = i,
        ["sku"] = $"SKU-{1000 + i}",
        ["region"] = i % 2 == 0 ? "emea" : "apac",
        ["stock"] = i * 7 % 120,
    }).ToArray());
}
