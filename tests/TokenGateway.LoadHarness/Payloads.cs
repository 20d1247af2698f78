using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace TokenGateway.LoadHarness;

/// <summary>
/// One request body sent to every target, with the open-loop rate it is measured at. With <see cref="NonceOffset"/>
/// set, each request gets its own copy with a unique nonce written at that byte offset (same length every time).
/// </summary>
internal sealed record Payload(string Name, byte[] Body, bool Stream, double BaseRate, IReadOnlyDictionary<string, string> Headers)
{
    private static readonly string _run = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
    private static long _sequence;

    public int? NonceOffset { get; init; }

    /// <summary>
    /// Measured only on the gateway targets: a body plain YARP and the peer cannot serve (a Claude model on the Chat
    /// Completions route, which the gateway translates to Anthropic Messages).
    /// </summary>
    public bool GatewayOnly { get; init; }

    /// <summary>The bytes of the next request: <see cref="Body"/> itself, or a copy with a fresh nonce.</summary>
    public byte[] NextBody()
    {
        if (NonceOffset is not { } offset)
        {
            return Body;
        }

        var copy = (byte[])Body.Clone();
        var nonce = string.Create(CultureInfo.InvariantCulture, $"{_run}{Interlocked.Increment(ref _sequence):x16}");
        Encoding.ASCII.GetBytes(nonce, copy.AsSpan(offset, Payloads.NonceLength));
        return copy;
    }
}

/// <summary>Deterministic request bodies: 1 KB chat, 20 KB RAG with JSON records, 100 KB conversation, 500-token stream.</summary>
internal static class Payloads
{
    /// <summary>Hex characters of a per-request nonce: 8 random per run, then a 16-digit sequence.</summary>
    public const int NonceLength = 24;

    private const string Model = "gpt-4o-mini";
    private const string NoncePrefix = " (request ";

    /// <summary>The Claude model of the translated payload (served by the simulator's Anthropic route).</summary>
    public const string TranslatedModel = "claude-haiku-4-5";

    private static readonly System.Text.Json.JsonSerializerOptions _indented = new() { WriteIndented = true };

    private static readonly string[] _words =
    [
        "the", "quarterly", "report", "shows", "revenue", "growth", "across", "regions", "while", "costs", "remained",
        "stable", "customers", "asked", "about", "delivery", "times", "and", "pricing", "for", "enterprise", "plans",
        "support", "tickets", "dropped", "after", "release", "of", "new", "onboarding", "flow", "team", "will", "review",
        "metrics", "next", "week", "with", "finance", "operations", "product", "leads",
    ];

    /// <summary>The four payloads; with <paramref name="uniqueBodies"/> each request's last user message ends with its own nonce.</summary>
    public static IReadOnlyList<Payload> All(bool uniqueBodies = false)
    {
        var none = new Dictionary<string, string>(StringComparer.Ordinal);
        List<Payload> payloads =
        [
            new("chat-1k", Chat(1024, stream: false), Stream: false, BaseRate: 100, none),
            // The same 1 KB chat for a Claude model: the gateway translates request and answer (issue #16); the
            // difference to chat-1k on the same target is the translation cost per request.
            new("chat-1k-xlat", WithModel(Chat(1024, stream: false), TranslatedModel), Stream: false, BaseRate: 100, none) { GatewayOnly = true },
            new("rag-20k", Rag(20 * 1024), Stream: false, BaseRate: 20, none),
            new("conv-100k", Conversation(100 * 1024), Stream: false, BaseRate: 5, none),
            new("stream-500", Chat(1024, stream: true), Stream: true, BaseRate: 20,
                new Dictionary<string, string>(StringComparer.Ordinal) { ["x-simulator-fault"] = "output-tokens=500" }),
        ];
        return uniqueBodies ? payloads.Select(WithNonce).ToList() : payloads;
    }

    private static byte[] WithModel(byte[] body, string model)
    {
        var node = JsonNode.Parse(body)!;
        node["model"] = model;
        return Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    /// <summary>
    /// A streamed 1 KB chat answered with <paramref name="outputTokens"/> tokens, one SSE event per token, paced by
    /// the simulator's <c>latency</c> fault (it waits that long after every event).
    /// </summary>
    public static Payload PacedStream(int outputTokens, TimeSpan pacing)
    {
        var body = JsonNode.Parse(Chat(1024, stream: true))!;
        body["max_tokens"] = outputTokens;
        var fault = string.Create(CultureInfo.InvariantCulture, $"output-tokens={outputTokens},latency={pacing.TotalMilliseconds:0}ms");
        return new Payload($"stream-{outputTokens}", Encoding.UTF8.GetBytes(body.ToJsonString()), Stream: true, BaseRate: 0,
            new Dictionary<string, string>(StringComparer.Ordinal) { ["x-simulator-fault"] = fault });
    }

    /// <summary>Appends a nonce placeholder to the last user message and records where it sits in the serialized body.</summary>
    private static Payload WithNonce(Payload payload)
    {
        var body = JsonNode.Parse(payload.Body)!;
        var lastUser = body["messages"]!.AsArray().Last(m => m!["role"]!.GetValue<string>() == "user")!;
        var placeholder = new string('0', NonceLength);
        lastUser["content"] = lastUser["content"]!.GetValue<string>() + NoncePrefix + placeholder + ")";
        var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
        var marker = Encoding.UTF8.GetBytes(NoncePrefix + placeholder + ")");
        var offset = bytes.AsSpan().LastIndexOf(marker) + Encoding.UTF8.GetByteCount(NoncePrefix);
        return payload with { Body = bytes, NonceOffset = offset };
    }

    private static byte[] Chat(int size, bool stream)
    {
        var body = new JsonObject
        {
            ["model"] = Model,
            ["messages"] = new JsonArray(
                Message("system", "You are a concise assistant for an operations team. Answer in one paragraph."),
                Message("user", "Summarize the following notes for the weekly meeting: " + Prose(size - 260, seed: 1))),
        };
        if (stream)
        {
            body["stream"] = true;
            body["max_tokens"] = 600;
        }

        return Encoding.UTF8.GetBytes(body.ToJsonString());
    }

    private static byte[] Rag(int size)
    {
        // Records are added until the whole body (the indented JSON escaped inside a message string) reaches the size.
        var records = new JsonArray();
        string[] categories = ["hardware", "software", "services", "training"];
        string[] regions = ["emea", "amer", "apac"];
        byte[] body = [];
        for (var i = 0; i < 10_000; i++)
        {
            var record = new JsonObject
            {
                ["id"] = i + 1,
                ["sku"] = string.Create(CultureInfo.InvariantCulture, $"SKU-{10000 + (i * 37 % 9000)}"),
                ["name"] = string.Create(CultureInfo.InvariantCulture, $"Product {i + 1} {_words[i % _words.Length]}"),
                ["category"] = categories[i % categories.Length],
                ["region"] = regions[i % regions.Length],
                ["price"] = Math.Round(9.99 + (i * 13 % 500), 2),
                ["stock"] = i * 7 % 120,
                ["updated"] = string.Create(CultureInfo.InvariantCulture, $"2026-{1 + (i % 12):00}-{1 + (i % 28):00}"),
                ["note"] = Prose(60, seed: i),
            };
            records.Add(record);
            var candidate = RagBody(records);
            if (candidate.Length > size)
            {
                break;
            }

            body = candidate;
        }

        return body;
    }

    private static byte[] RagBody(JsonArray records)
    {
        var context = "Retrieved records (JSON):\n" + records.ToJsonString(_indented);
        var body = new JsonObject
        {
            ["model"] = Model,
            ["messages"] = new JsonArray(
                Message("system", "Answer strictly from the retrieved records. Cite record ids."),
                Message("user", context + "\n\nQuestion: which hardware products in emea are low on stock?")),
        };
        return Encoding.UTF8.GetBytes(body.ToJsonString());
    }

    private static byte[] Conversation(int size)
    {
        var messages = new JsonArray(Message("system", "You are a helpful planning assistant. Keep track of decisions."));
        var total = 200;
        for (var turn = 0; total < size - 200; turn++)
        {
            var text = Prose(1500, seed: turn + 100);
            messages.Add(Message(turn % 2 == 0 ? "user" : "assistant", text));
            total += text.Length + 40;
        }

        messages.Add(Message("user", "Given everything above, list the three open decisions."));
        return Encoding.UTF8.GetBytes(new JsonObject { ["model"] = Model, ["messages"] = messages }.ToJsonString());
    }

    private static JsonObject Message(string role, string content) => new() { ["role"] = role, ["content"] = content };

    private static string Prose(int length, int seed)
    {
        var builder = new StringBuilder(length + 16);
        var state = (uint)(seed * 2654435761u) | 1;
        while (builder.Length < length)
        {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            builder.Append(_words[state % (uint)_words.Length]);
            builder.Append(state % 11 == 0 ? ". " : " ");
        }

        return builder.ToString(0, Math.Max(1, length)).TrimEnd();
    }
}
