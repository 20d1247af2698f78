using System.Text;

namespace TokenGateway.Simulator;

/// <summary>One request as the simulator received it: method, path and query, every header, the body bytes and the time.</summary>
public sealed record RecordedRequest
{
    /// <summary>Monotonic sequence number (1-based) in arrival order.</summary>
    public required long Sequence { get; init; }

    /// <summary>HTTP method.</summary>
    public required string Method { get; init; }

    /// <summary>Path (including the simulator's prefix) and query string.</summary>
    public required string PathAndQuery { get; init; }

    /// <summary>All request headers; multiple values are joined with <c>", "</c>. Lookups are case-insensitive.</summary>
    public required IReadOnlyDictionary<string, string> Headers { get; init; }

    /// <summary>The body exactly as received.</summary>
    public required ReadOnlyMemory<byte> Body { get; init; }

    /// <summary>When the request arrived (from the injected <see cref="TimeProvider"/>).</summary>
    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>The body decoded as UTF-8.</summary>
    public string BodyText => Encoding.UTF8.GetString(Body.Span);

    /// <summary>The value of header <paramref name="name"/>, or null when absent.</summary>
    public string? GetHeader(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}
