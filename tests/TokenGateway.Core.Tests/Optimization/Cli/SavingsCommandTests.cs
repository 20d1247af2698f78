using System.Text.Json.Nodes;
using TokenGateway.Cli;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Tests.Optimization.Corpus;

namespace TokenGateway.Core.Tests.Optimization.Cli;

public sealed class SavingsCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tg-savings-").FullName;

    [Fact]
    public void Run_CorpusSample_WritesReportEntriesInInputOrderAndEmitsEveryLine()
    {
        var sample = BenchmarkCorpus.DataRequests(CorpusPaths.Corpus()).Take(3)
            .Concat(BenchmarkCorpus.ToolConversations(CorpusPaths.Corpus(), 2))
            .Concat(BenchmarkCorpus.ChatRequests(CorpusPaths.Corpus()).Take(2)).ToList();
        var input = Path.Combine(_dir, "requests.jsonl");
        File.WriteAllLines(input, sample.Select(r => r.Endpoint == "/v1/chat/completions"
            ? r.Body.ToJsonString(LlmRequestParser.WriteOptions)
            : new JsonObject { ["endpoint"] = r.Endpoint, ["body"] = r.Body.DeepClone() }.ToJsonString(LlmRequestParser.WriteOptions)));
        var report = Path.Combine(_dir, "report.json");
        var emit = Path.Combine(_dir, "rewritten.jsonl");
        var stdout = new StringWriter();

        var exit = SavingsCommand.Run(["--input", input, "--report", report, "--emit", emit], stdout, new StringWriter());

        Assert.Equal(0, exit);
        var json = JsonNode.Parse(File.ReadAllText(report))!;
        Assert.Equal(sample.Count, (int)json["totals"]!["requests"]!);
        var entries = json["requests"]!.AsArray();
        Assert.Equal(Enumerable.Range(1, sample.Count), entries.Select(e => (int)e!["line"]!));
        Assert.True((long)json["totals"]!["tokensSent"]! < (long)json["totals"]!["tokensReceived"]!);
        Assert.Equal("/v1/messages", (string?)entries[4]!["endpoint"]);
        Assert.Equal(sample.Count, File.ReadAllLines(emit).Length);
        Assert.Contains("compact", stdout.ToString(), StringComparison.Ordinal);
        var lastChat = File.ReadAllLines(emit)[^1];
        Assert.Equal(sample[^1].Body.ToJsonString(LlmRequestParser.WriteOptions), lastChat); // plain chat passes through unchanged
    }

    [Fact]
    public void Run_PolicyWithMaxTokensAndBadLine_AppliesCapAndReportsFailure()
    {
        var input = Path.Combine(_dir, "requests.jsonl");
        File.WriteAllLines(input,
        [
            """{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}""",
            "not json",
        ]);
        var policy = Path.Combine(_dir, "policy.json");
        File.WriteAllText(policy, """{"maxTokens":{"default":256,"cap":1024},"optimization":{"dedupe":false}}""");
        var emit = Path.Combine(_dir, "out.jsonl");

        var exit = SavingsCommand.Run(["--input", input, "--report", Path.Combine(_dir, "r.json"), "--emit", emit, "--policy", policy], new StringWriter(), new StringWriter());

        Assert.Equal(1, exit);
        Assert.Contains("\"max_completion_tokens\":256", File.ReadAllLines(emit)[0], StringComparison.Ordinal);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "r.json")))!;
        Assert.NotNull(report["requests"]![1]!["error"]);
        Assert.DoesNotContain(report["totals"]!["stages"]!.AsArray(), s => (string?)s!["name"] == "dedupe");
    }

    [Fact]
    public void Run_MissingArguments_ReturnsUsageError()
    {
        var stderr = new StringWriter();

        var exit = SavingsCommand.Run(["--input"], new StringWriter(), stderr);

        Assert.Equal(2, exit);
        Assert.Contains("usage:", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_CatalogAsNamedMap_ResolvesAliases()
    {
        var catalog = ModelCatalogLoader.Parse("""{"Models":{"gpt-4o-mini":{"Provider":"openai","ContextWindow":64000,"Aliases":["mini"]}}}""");

        Assert.True(catalog.TryResolve("mini", out var card));
        Assert.Equal(64000, card.ContextWindow);
    }

    [Fact]
    public void Load_RepositoryCatalog_ReadsEveryCardWithItsPrices()
    {
        var log = new StringWriter();

        var loader = ModelCatalogLoader.Load(log, CorpusPaths.RepoRoot);
        var card = loader.Resolve("gpt-4o-2024-08-06", LlmDialect.OpenAIChat);

        Assert.Equal(string.Empty, log.ToString()); // "Kind": "Chat" used to make the loader ignore catalog.json
        Assert.Equal(2.5m, card.Prices.Input);
        Assert.Equal(4096, loader.Resolve("claude-haiku-4-5", LlmDialect.AnthropicMessages).CacheMinTokens);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
