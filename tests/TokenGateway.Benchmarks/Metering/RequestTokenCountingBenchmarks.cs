using System.Text;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Benchmarks.Metering;

/// <summary>Pre-flight count of an OpenAI chat request of 1 KB / 10 KB / 100 KB (o200k_base).</summary>
[MemoryDiagnoser]
public class RequestTokenCountingBenchmarks
{
    private static readonly string[] _paragraphs =
    [
        "The quarterly report shows revenue grew 12% year over year, driven mostly by subscriptions in Europe and North America.",
        "```csharp\npublic static int Add(int a, int b) => a + b;\n```",
        "{\"id\": 42, \"name\": \"Widget\", \"tags\": [\"blue\", \"small\"], \"price\": 19.99, \"inStock\": true}",
        "Please summarise the following conversation and list any action items with owners and due dates.",
        "Les résultats montrent une amélioration nette de la latence après la mise à jour du cache.",
    ];

    private readonly ChatRequestTokenCounter _counter = new(TiktokenTokenizerRegistry.Shared);
    private readonly ModelCard _card = new() { Name = "gpt-4o", Provider = "openai", Tokenizer = "o200k_base" };
    private LlmRequest _request = null!; // set in GlobalSetup

    /// <summary>Approximate body size in kilobytes.</summary>
    [Params(1, 10, 100)]
    public int SizeKb { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var messages = new JsonArray { new JsonObject { ["role"] = "system", ["content"] = "You are a helpful assistant." } };
        var size = 0;
        var i = 0;
        while (size < SizeKb * 1024)
        {
            var text = _paragraphs[i % _paragraphs.Length] + " " + _paragraphs[(i + 2) % _paragraphs.Length];
            messages.Add(new JsonObject { ["role"] = i % 2 == 0 ? "user" : "assistant", ["content"] = text });
            size += text.Length + 30;
            i++;
        }

        var body = new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages }.ToJsonString();
        if (!LlmRequestParser.TryParse(LlmDialect.OpenAIChat, Encoding.UTF8.GetBytes(body), out var request, out var error))
        {
            throw new InvalidOperationException(error.Message);
        }

        _request = request!;
        _counter.CountInputTokens(_request, _card); // load the tokenizer outside the measurement
    }

    [Benchmark]
    public int CountChatRequest() => _counter.CountInputTokens(_request, _card);
}
