using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace TokenGateway.Simulator;

/// <summary>
/// Keeps the last <see cref="SimulatorOptions.RecordLimit"/> requests the simulator received, so in-process tests can
/// assert what the upstream saw (credentials, rewritten bodies, forwarded headers).
/// </summary>
/// <remarks>
/// Held in memory only and never logged. It does hold credentials (that is its purpose in tests); set
/// <see cref="SimulatorOptions.RecordLimit"/> to 0 to disable it in a long-running host.
/// </remarks>
public sealed class SimulatorRecorder
{
    private readonly Lock _lock = new();
    private readonly Queue<RecordedRequest> _requests = new();
    private readonly int _limit;
    private readonly TimeProvider _time;
    private long _sequence;

    /// <summary>Creates a recorder sized by <paramref name="options"/>.</summary>
    public SimulatorRecorder(IOptions<SimulatorOptions> options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _limit = options.Value.RecordLimit;
        _time = time;
    }

    /// <summary>True when recording is enabled.</summary>
    public bool IsEnabled => _limit > 0;

    /// <summary>Total number of requests seen since start or the last <see cref="Clear"/>, including evicted ones.</summary>
    public long Count => Interlocked.Read(ref _sequence);

    /// <summary>The retained requests, oldest first.</summary>
    public IReadOnlyList<RecordedRequest> Snapshot()
    {
        lock (_lock)
        {
            return [.. _requests];
        }
    }

    /// <summary>Forgets every recorded request and resets <see cref="Count"/>.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _requests.Clear();
            Interlocked.Exchange(ref _sequence, 0);
        }
    }

    /// <summary>The most recent retained request whose header <paramref name="name"/> equals <paramref name="value"/> (ordinal), or null.</summary>
    public RecordedRequest? FindByHeader(string name, string value)
    {
        lock (_lock)
        {
            RecordedRequest? found = null;
            foreach (var request in _requests)
            {
                if (request.Headers.TryGetValue(name, out var v) && string.Equals(v, value, StringComparison.Ordinal))
                {
                    found = request;
                }
            }

            return found;
        }
    }

    /// <summary>Every retained request whose header <paramref name="name"/> equals <paramref name="value"/>, oldest first.</summary>
    public IReadOnlyList<RecordedRequest> FindAllByHeader(string name, string value)
    {
        lock (_lock)
        {
            return _requests.Where(r => r.Headers.TryGetValue(name, out var v) && string.Equals(v, value, StringComparison.Ordinal)).ToArray();
        }
    }

    /// <summary>The most recent retained request, or null.</summary>
    public RecordedRequest? Last()
    {
        lock (_lock)
        {
            return _requests.Count == 0 ? null : _requests.Last();
        }
    }

    internal void Record(HttpRequest request, ReadOnlyMemory<byte> body)
    {
        if (_limit <= 0)
        {
            Interlocked.Increment(ref _sequence);
            return;
        }

        var headers = new Dictionary<string, string>(request.Headers.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var header in request.Headers)
        {
            headers[header.Key] = header.Value.ToString();
        }

        var pathAndQuery = string.Concat(request.PathBase.Value, request.Path.Value, request.QueryString.Value);
        var copy = body.ToArray();
        var time = _time.GetUtcNow();
        lock (_lock)
        {
            var recorded = new RecordedRequest
            {
                Sequence = Interlocked.Increment(ref _sequence),
                Method = request.Method,
                PathAndQuery = pathAndQuery,
                Headers = headers,
                Body = copy,
                ReceivedAt = time,
            };
            _requests.Enqueue(recorded);
            while (_requests.Count > _limit)
            {
                _requests.Dequeue();
            }
        }
    }
}
