using System.Text;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Benchmarks.Optimization;

/// <summary>
/// The optimizer on a 1 KB chat it does not change, as the gateway runs it: borrowed parse, the pre-flight count, one
/// pipeline run under the default policy, dispose. <c>precheck</c> is the shipped pipeline, <c>no-precheck</c> the
/// same without <see cref="NoOpScan"/> (every stage runs), <c>optimize-off</c> the <c>x-tokengateway-optimize: off</c>
/// floor (output cap only).
/// </summary>
[MemoryDiagnoser]
public class NoOpChatBenchmarks
{
    private static readonly ModelCard _card = new() { Name = "gpt-4o", Provider = "openai", ContextWindow = 128_000 };
    private static readonly ChatRequestTokenCounter _counter = new(TiktokenTokenizerRegistry.Shared);
    private static readonly string[] _words =
    [
        "deploy", "latency", "the", "service", "queue", "budget", "team", "review", "metrics", "incident", "on-call", "and",
        "rollout", "capacity", "database", "for", "migration", "alert", "customer", "with", "release", "cost", "region", "to",
    ];

    private OptimizationPipeline _pipeline = null!;
    private OptimizationPolicy _policy = OptimizationPolicy.Default;
    private byte[] _body = [];

    /// <summary>Which pipeline runs.</summary>
    [Params("precheck", "no-precheck", "optimize-off")]
    public string Mode { get; set; } = "precheck";

    [GlobalSetup]
    public void Setup()
    {
        _pipeline = new OptimizationPipeline(TiktokenTokenizerRegistry.Shared, _counter) { SkipProvenNoOps = Mode != "no-precheck" };
        _policy = Mode == "optimize-off" ? OptimizationPolicy.Default with { Enabled = false } : OptimizationPolicy.Default;
        var prose = new StringBuilder();
        var state = 2463534242u;
        while (prose.Length < 760)
        {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            prose.Append(_words[state % (uint)_words.Length]).Append(state % 9 == 0 ? ". " : " ");
        }

        _body = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = "You are a concise assistant for an operations team. Answer in one paragraph." },
                new JsonObject { ["role"] = "user", ["content"] = "Summarize the following notes for the weekly meeting: " + prose.ToString().TrimEnd() }),
        }.ToJsonString());
    }

    [Benchmark]
    public int Run()
    {
        LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, _body, out var request, out _);
        using (request)
        {
            var received = _counter.CountInputTokens(request!, _card);
            var result = _pipeline.Run(request!, _card, _policy, default, received);
            return result.TokensSent + request!.GetBytesToSend().Length;
        }
    }
}
