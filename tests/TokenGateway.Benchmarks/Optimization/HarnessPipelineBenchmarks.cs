using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tokenization;
using TokenGateway.LoadHarness;

namespace TokenGateway.Benchmarks.Optimization;

/// <summary>
/// The load harness's full-pipeline work per request, on its own payloads (chat-1k, rag-20k): parse, one pipeline run
/// under the harness policy with the pre-flight count passed in (as the gateway does), and serialization of the body.
/// </summary>
[MemoryDiagnoser]
public class HarnessPipelineBenchmarks
{
    private static readonly ModelCard _card = new() { Name = "gpt-4o-mini", Provider = "openai" };
    private static readonly OutputLimits _limits = new(1024, 4096, 0);
    private readonly ChatRequestTokenCounter _counter = new(TiktokenTokenizerRegistry.Shared);
    private OptimizationPipeline _pipeline = null!;
    private OptimizationPolicy _policy = null!;
    private byte[] _body = [];
    private int _received;

    /// <summary>Harness payload name.</summary>
    [Params("chat-1k", "rag-20k")]
    public string Payload { get; set; } = "chat-1k";

    [GlobalSetup]
    public void Setup()
    {
        _pipeline = new OptimizationPipeline(TiktokenTokenizerRegistry.Shared, _counter);
        _policy = HarnessPolicy();
        _body = Payloads.All().Single(p => p.Name == Payload).Body;
        LlmRequestParser.TryParse(LlmDialect.OpenAIChat, _body, out var request, out _);
        _received = _counter.CountInputTokens(request!, _card);
    }

    /// <summary>The policy the load harness puts on its full-pipeline team (its <c>optimization</c> section).</summary>
    public static OptimizationPolicy HarnessPolicy() => OptimizationPolicy.FromJson(
        JsonNode.Parse("""{ "enabled": true, "compact": true, "dedupe": true, "trim": { "maxInputTokens": 60000 } }""")!.AsObject(), out _);

    /// <summary>Parse + pipeline (pre-flight count supplied) + serialization.</summary>
    [Benchmark]
    public int Run()
    {
        LlmRequestParser.TryParse(LlmDialect.OpenAIChat, _body, out var request, out _);
        var result = _pipeline.Run(request!, _card, _policy, _limits, _received);
        return result.TokensSent + request!.GetBytesToSend().Length;
    }
}
