using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Benchmarks.Optimization;

/// <summary>CPU and allocations of parsing plus one pipeline run (both token counts included) for 1, 20 and 100 KB requests.</summary>
[MemoryDiagnoser]
public class PipelineBenchmarks
{
    private static readonly ModelCard _card = new() { Name = "gpt-4o", Provider = "openai" };
    private readonly OptimizationPipeline _pipeline = new(TiktokenTokenizerRegistry.Shared, new ChatRequestTokenCounter(TiktokenTokenizerRegistry.Shared));
    private byte[] _body = [];

    /// <summary>Request size in KB.</summary>
    [Params(1, 20, 100)]
    public int SizeKb { get; set; }

    /// <summary>Workload: pretty JSON records (compact + TOON path) or prose chat (mostly pass-through).</summary>
    [Params("json", "prose")]
    public string Kind { get; set; } = "json";

    [GlobalSetup]
    public void Setup()
    {
        var root = FindCorpus();
        var target = SizeKb * 1024;
        string content;
        if (Kind == "json")
        {
            var repos = JsonNode.Parse(File.ReadAllText(Path.Combine(root, "toon-benchmarks", "github-repos.json")))!.AsArray();
            var rows = new JsonArray();
            var i = 0;
            while (rows.ToJsonString(new JsonSerializerOptions { WriteIndented = true }).Length < target - 200)
            {
                rows.Add(repos[i++ % repos.Count]!.DeepClone());
            }

            content = "Repositories:\n" + rows.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\nWhich has the most stars?";
        }
        else
        {
            var sb = new StringBuilder();
            foreach (var line in File.ReadLines(Path.Combine(root, "mt-bench", "reference_answer_gpt-4.jsonl")))
            {
                sb.Append((string)JsonNode.Parse(line)!["choices"]![0]!["turns"]![0]!).Append("\n\n");
                if (sb.Length >= target - 200)
                {
                    break;
                }
            }

            while (sb.Length < target - 200)
            {
                sb.Append(sb.ToString(0, Math.Min(sb.Length, target - 200 - sb.Length)));
            }

            content = sb.ToString();
        }

        _body = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
        }.ToJsonString());
    }

    [Benchmark]
    public int Run()
    {
        LlmRequestParser.TryParse(LlmDialect.OpenAIChat, _body, out var request, out _);
        var result = _pipeline.Run(request!, _card, OptimizationPolicy.Default, default);
        return result.TokensSent + request!.GetBytesToSend().Length;
    }

    private static string FindCorpus()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "corpus");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("tests/corpus not found above the benchmark binaries.");
    }
}
