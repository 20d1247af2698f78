using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tests.Optimization.Corpus;
using static TokenGateway.Core.Tests.Optimization.OptimizationTestKit;

namespace TokenGateway.Core.Tests.Optimization;

/// <summary>
/// Pins the pipeline's observable output — bytes sent, tokens received/sent and per-stage savings — on the benchmark
/// corpus, the raw JSON files of the shared corpus and the load harness payloads, so performance work cannot change
/// what is forwarded or reported. The golden file was produced by the implementation before the counting fast paths;
/// regenerate it only for an intended behaviour change (TOKENGATEWAY_UPDATE_GOLDEN=1).
/// </summary>
public sealed class PipelineGoldenOutputTests
{
    private static readonly string _goldenPath = Path.Combine(CorpusPaths.RepoRoot, "tests", "TokenGateway.Core.Tests", "Optimization", "Golden", "pipeline-outputs.tsv");

    private static readonly OptimizationPolicy _toolPolicy = OptimizationPipelineTests.ToolPolicy;

    private static readonly OptimizationPolicy _harnessPolicy = OptimizationPolicy.FromJson(
        JsonNode.Parse("""{ "enabled": true, "compact": true, "dedupe": true, "trim": { "maxInputTokens": 60000 } }""")!.AsObject(), out _);

    private static readonly OptimizationPolicy _curatePolicy = OptimizationPolicy.Default with { Curate = new CurateOptions { Enabled = true, MaxTokens = 2000 } };

    [Fact]
    public void Run_GoldenCases_ProduceTheRecordedOutputs()
    {
        var actual = Cases().Select(c => Fingerprint(c, Parse(c.Dialect, c.Json), Pipeline)).ToList();
        if (Environment.GetEnvironmentVariable("TOKENGATEWAY_UPDATE_GOLDEN") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(_goldenPath)!);
            File.WriteAllLines(_goldenPath, actual);
        }

        var expected = File.ReadAllLines(_goldenPath);
        Assert.Equal(expected.Length, actual.Count);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i]);
        }
    }

    /// <summary>The golden cases in file order: a request body, its dialect, the policy and the output limits.</summary>
    internal static IEnumerable<GoldenCase> Cases()
    {
        // The corpus RAG workload picks its chunks in a per-process hash order; deterministic RAG prompts are built below.
        var corpus = BenchmarkCorpus.DataRequests(CorpusPaths.Corpus())
            .Concat(BenchmarkCorpus.ToolConversations(CorpusPaths.Corpus(), 40))
            .Concat(BenchmarkCorpus.ChatRequests(CorpusPaths.Corpus()));
        foreach (var item in corpus)
        {
            var policy = item.Workload == BenchmarkCorpus.ToolWorkload ? _toolPolicy : OptimizationPolicy.Default;
            Assert.True(LlmDialects.TryFromPath(item.Endpoint, out var dialect));
            yield return new($"{item.Workload}/{item.Id}", dialect, item.Body.ToJsonString(LlmRequestParser.WriteOptions), policy, default);
        }

        var docs = JsonNode.Parse(File.ReadAllText(CorpusPaths.Corpus("claude-cookbooks-rag", "anthropic_docs.json")))!.AsArray();
        for (var r = 0; r < 20; r++)
        {
            var documents = string.Join("\n", Enumerable.Range(0, 8).Select(i => docs[((r * 8) + i) % docs.Count]!).Select((d, i) =>
                $"<document index=\"{i + 1}\">\n<source>{d["chunk_link"]}</source>\n<document_content>\n{d["text"]}\n</document_content>\n</document>"));
            var body = new JsonObject
            {
                ["model"] = "gpt-4o",
                ["messages"] = new JsonArray(
                    new JsonObject { ["role"] = "system", ["content"] = "Answer using only the provided documents." },
                    new JsonObject { ["role"] = "user", ["content"] = $"<documents>\n{documents}\n</documents>\n\nQuestion: how do I use the API?" }),
            };
            yield return new($"rag/{r}/default", LlmDialect.OpenAIChat, body.ToJsonString(), OptimizationPolicy.Default, default);
            yield return new($"rag/{r}/curate", LlmDialect.OpenAIChat, body.ToJsonString(), _curatePolicy, default);
        }

        foreach (var file in CorpusJsonFiles())
        {
            var text = File.ReadAllText(file);
            var name = Path.GetRelativePath(CorpusPaths.Corpus(), file).Replace('\\', '/');
            foreach (var (shape, content) in new[]
            {
                ("prose", "Here is the data:\n" + text.TrimEnd() + "\n\nWhat does it contain?"),
                ("fence", "```json\n" + text.TrimEnd() + "\n```\n\nSummarize."),
                ("whole", text),
            })
            {
                var chat = new JsonObject
                {
                    ["model"] = "gpt-4o",
                    ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
                };
                yield return new($"file/{name}/{shape}/openai", LlmDialect.OpenAIChat, chat.ToJsonString(), OptimizationPolicy.Default, default);
                var anthropic = new JsonObject
                {
                    ["model"] = "claude-sonnet-4-5",
                    ["max_tokens"] = 1024,
                    ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
                };
                yield return new($"file/{name}/{shape}/anthropic", LlmDialect.AnthropicMessages, anthropic.ToJsonString(), OptimizationPolicy.Default, default);
            }
        }

        foreach (var payload in TokenGateway.LoadHarness.Payloads.All())
        {
            yield return new($"harness/{payload.Name}", LlmDialect.OpenAIChat, Encoding.UTF8.GetString(payload.Body), _harnessPolicy, new OutputLimits(1024, 4096, 0));
        }
    }

    /// <summary>JSON files of the shared corpus small enough to sit in one prompt.</summary>
    internal static IEnumerable<string> CorpusJsonFiles() =>
        Directory.EnumerateFiles(CorpusPaths.Corpus(), "*.json", SearchOption.AllDirectories)
            .Where(f => new FileInfo(f).Length <= 300_000)
            .Order(StringComparer.Ordinal);

    /// <summary>One line of the golden file: what <paramref name="pipeline"/> made of <paramref name="request"/> (parsed from <paramref name="c"/>).</summary>
    internal static string Fingerprint(GoldenCase c, LlmRequest request, OptimizationPipeline pipeline)
    {
        var (id, policy, limits) = (c.Id, c.Policy, c.Limits);
        var result = pipeline.Run(request, CardFor(request.Dialect), policy, limits);
        var hash = Convert.ToHexStringLower(SHA256.HashData(request.GetBytesToSend().Span))[..16];
        var stages = string.Join(',', result.Stages.Select(s => $"{s.Name}={s.TokensSaved}"));
        return $"{id}\t{request.IsModified}\t{hash}\t{result.TokensReceived}\t{result.TokensSent}\t{stages}";
    }
}

/// <summary>One golden case: the request as sent and how it is optimized.</summary>
internal sealed record GoldenCase(string Id, LlmDialect Dialect, string Json, OptimizationPolicy Policy, OutputLimits Limits);
