using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Cli;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Tests.Optimization.Corpus;
using Xunit.Abstractions;

namespace TokenGateway.Core.Tests.Optimization.Cli;

/// <summary>The <c>savings</c> report in dollars, with the provider prompt cache along the conversations of the input.</summary>
public sealed class SavingsCostTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tg-savings-cost-").FullName;

    [Fact]
    public void Run_TwoTurnsOfOneChat_PricesEachLineAtTheCatalogueAndReadsTheCachedPrefix()
    {
        var system = string.Join(' ', Enumerable.Repeat("You answer questions about the quarterly report in detail.", 150));
        var turn1 = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = system }, new JsonObject { ["role"] = "user", ["content"] = "What was revenue?" }),
        };
        var turn2 = (JsonObject)turn1.DeepClone();
        turn2["messages"]!.AsArray().Add(new JsonObject { ["role"] = "assistant", ["content"] = "Revenue was $4.2M." });
        turn2["messages"]!.AsArray().Add(new JsonObject { ["role"] = "user", ["content"] = "And profit?" });
        var unpriced = new JsonObject { ["model"] = "my-local-model", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) };
        var input = Path.Combine(_dir, "in.jsonl");
        File.WriteAllLines(input, [Line(turn1), Line(turn2), Line(unpriced)]);
        var report = Path.Combine(_dir, "r.json");
        var stdout = new StringWriter();

        var exit = SavingsCommand.Run(["--input", input, "--report", report], stdout, new StringWriter());

        Assert.Equal(0, exit);
        var json = JsonNode.Parse(File.ReadAllText(report))!;
        var entries = json["requests"]!.AsArray();
        var t1 = entries[0]!;
        var t2 = entries[1]!;
        var received1 = (int)t1["tokensReceived"]!;
        var received2 = (int)t2["tokensReceived"]!;
        var sent2 = (int)t2["tokensSent"]!;
        Assert.True(received1 >= 1024, "the system prompt must reach OpenAI's 1,024-token minimum");
        // gpt-4o: $2.50/M input, $1.25/M cached input.
        Assert.Equal(received1 * 2.5m / 1_000_000m, (decimal)t1["cost"]!["beforeUsd"]!);
        Assert.Equal((decimal)t1["cost"]!["beforeUsd"]!, (decimal)t1["cost"]!["beforeCachedUsd"]!); // first turn: nothing cached
        var read = (int)t2["cache"]!["before"]!["readTokens"]!;
        Assert.Equal(read / 128 * 128, read);
        Assert.InRange(read, received1 - 128, received1); // the whole first turn, rounded down to 128 tokens
        Assert.Equal(((received2 - read) * 2.5m + read * 1.25m) / 1_000_000m, (decimal)t2["cost"]!["beforeCachedUsd"]!);
        var readAfter = (int)t2["cache"]!["after"]!["readTokens"]!;
        Assert.Equal(((sent2 - readAfter) * 2.5m + readAfter * 1.25m) / 1_000_000m, (decimal)t2["cost"]!["afterCachedUsd"]!);
        Assert.Equal(2, (int)t2["cache"]!["turn"]!);
        Assert.False((bool)entries[2]!["cost"]!["priced"]!);
        Assert.Contains("my-local-model", (string?)entries[2]!["cost"]!["note"], StringComparison.Ordinal);
        var totals = json["totals"]!["cost"]!;
        Assert.Equal(1, (int)totals["unpricedRequests"]!);
        Assert.Equal((decimal)t1["cost"]!["beforeCachedUsd"]! + (decimal)t2["cost"]!["beforeCachedUsd"]!, (decimal)totals["beforeCachedUsd"]!);
        Assert.Contains("with provider prompt cache", stdout.ToString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// Every turn of the first 40 BFCL agent conversations (OpenAI and Anthropic shapes alternating, turns interleaved
    /// round-robin as live traffic would be), priced with the default policy and with tool selection + stale tool
    /// results. Prints the figures quoted in docs/optimization.md and leaves the input in $TMPDIR for the CLI.
    /// </summary>
    [Fact]
    public void Run_BfclAgentConversationsTurnByTurn_ReportsCacheAwareDollars()
    {
        var input = Path.Combine(Path.GetTempPath(), "tokengateway-agent-turns.jsonl");
        var conversations = new List<List<CorpusRequest>>();
        var i = 0;
        foreach (var entry in BenchmarkCorpus.BfclEntries(CorpusPaths.Corpus()).Take(40))
        {
            var anthropic = i++ % 2 == 1;
            var turns = entry["question"]!.AsArray().Count;
            conversations.Add([.. Enumerable.Range(1, turns).Select(t => anthropic
                ? BenchmarkCorpus.AnthropicConversation(CorpusPaths.Corpus(), entry, t)
                : BenchmarkCorpus.OpenAIConversation(CorpusPaths.Corpus(), entry, t))]);
        }

        var lines = new List<string>();
        for (var t = 0; t < conversations.Max(c => c.Count); t++)
        {
            lines.AddRange(conversations.Where(c => t < c.Count).Select(c => Line(c[t])));
        }

        File.WriteAllLines(input, lines);
        var policy = Path.Combine(Path.GetTempPath(), "tokengateway-agent-policy.json");
        File.WriteAllText(policy, """{"optimization":{"tools":{"enabled":true,"maxTools":8},"trim":{"staleToolResults":{"keepRecent":1,"minTokens":200}}}}""");
        var summary = new StringBuilder().AppendLine(CultureInfo.InvariantCulture, $"input: {input} ({lines.Count} requests, {conversations.Count} conversations)");

        foreach (var (name, args) in new[] { ("default policy", Array.Empty<string>()), ("tools maxTools 8 + staleToolResults keepRecent 1", new[] { "--policy", policy }) })
        {
            var report = Path.Combine(_dir, "report.json");
            var stdout = new StringWriter();
            var exit = SavingsCommand.Run(["--input", input, "--report", report, .. args], stdout, new StringWriter());
            Assert.Equal(0, exit);
            var json = JsonNode.Parse(File.ReadAllText(report))!;
            var cost = json["totals"]!["cost"]!;
            var cache = json["totals"]!["cache"]!;
            Assert.Equal(conversations.Count, (int)cache["conversations"]!);
            Assert.Equal(0, (int)cost["unpricedRequests"]!);
            Assert.True((decimal)cost["afterUsd"]! < (decimal)cost["beforeUsd"]!);
            Assert.True((long)cache["readTokensBefore"]! > 0, "OpenAI caches the agent's prefix automatically");
            Assert.True((long)cache["writeTokensAfter"]! > 0, "cache_hints adds Anthropic breakpoints");
            foreach (var entry in json["requests"]!.AsArray())
            {
                var model = (string)entry!["model"]!;
                var price = model == "gpt-4o" ? 2.5m : 3m;
                Assert.Equal((int)entry["tokensReceived"]! * price / 1_000_000m, (decimal)entry["cost"]!["beforeUsd"]!);
            }

            summary.AppendLine(CultureInfo.InvariantCulture, $"== {name}").Append(stdout);
            summary.AppendLine(CultureInfo.InvariantCulture, $"totals.cost: {cost.ToJsonString()}");
            summary.AppendLine(CultureInfo.InvariantCulture, $"totals.cache: {cache.ToJsonString()}");
            foreach (var shape in new[] { "gpt-4o", "claude-sonnet-4-5" })
            {
                var rows = json["requests"]!.AsArray().Where(e => (string)e!["model"]! == shape).ToList();
                decimal Sum(string field) => rows.Sum(e => (decimal)e!["cost"]![field]!);
                summary.AppendLine(CultureInfo.InvariantCulture,
                    $"{shape}: {rows.Count} requests, before {Sum("beforeUsd"):F4} after {Sum("afterUsd"):F4} beforeCached {Sum("beforeCachedUsd"):F4} afterCached {Sum("afterCachedUsd"):F4} broken {rows.Count(e => e!["cache"]!["prefixBrokenAt"] is not null)}");
            }
        }

        output.WriteLine(summary.ToString());
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "tokengateway-savings-cost.txt"), summary.ToString());
    }

    private static string Line(JsonObject chat) => chat.ToJsonString(LlmRequestParser.WriteOptions);

    private static string Line(CorpusRequest r) => r.Endpoint == "/v1/chat/completions"
        ? r.Body.ToJsonString(LlmRequestParser.WriteOptions)
        : new JsonObject { ["endpoint"] = r.Endpoint, ["body"] = r.Body.DeepClone() }.ToJsonString(LlmRequestParser.WriteOptions);

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
