using System.Buffers;
using System.Collections.Frozen;
using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Options;
using TokenGateway.Hosting;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace TokenGateway.Proxy.Upstream;

/// <summary>Why the gateway makes an upstream call. Retries and fallbacks (issue #13) add their kinds here.</summary>
internal enum UpstreamAttemptKind
{
    /// <summary>The client's own request (forwarded by YARP on the proxy path).</summary>
    Primary,

    /// <summary>A structured-output repair call made by the gateway for the request.</summary>
    Repair,
}

/// <summary>
/// One upstream call made on behalf of a request: its id (sent upstream and used for its ledger event), kind and
/// number. The unit a resilience pipeline (issue #13) retries, admits and meters.
/// </summary>
internal readonly record struct UpstreamAttempt(string RequestId, UpstreamAttemptKind Kind, int Number)
{
    /// <summary>The ledger's <c>attempt</c> value (null for the primary call).</summary>
    public string? LedgerKind => Kind switch
    {
        UpstreamAttemptKind.Repair => "repair",
        _ => null,
    };

    /// <summary>The <paramref name="number"/>th repair call of the request <paramref name="parentRequestId"/>.</summary>
    public static UpstreamAttempt Repair(string parentRequestId, int number) =>
        new($"{parentRequestId}_repair{number.ToString(System.Globalization.CultureInfo.InvariantCulture)}", UpstreamAttemptKind.Repair, number);
}

/// <summary>The answer to a buffered upstream call; <see cref="Dispose"/> returns the pooled body.</summary>
internal sealed class UpstreamResponse : IDisposable
{
    private byte[]? _buffer;
    private readonly int _length;

    internal UpstreamResponse(int status, byte[]? buffer, int length, string? errorCode, string? destination, double latencyMs)
    {
        Status = status;
        _buffer = buffer;
        _length = length;
        ErrorCode = errorCode;
        Destination = destination;
        LatencyMs = latencyMs;
    }

    /// <summary>HTTP status, or 0 when no response arrived.</summary>
    public int Status { get; }

    /// <summary>A stable gateway code when the call failed (<c>upstream_unavailable</c>, <c>upstream_timeout</c>, <c>upstream_NNN</c>, …).</summary>
    public string? ErrorCode { get; }

    /// <summary>The destination the call went to, when one was picked.</summary>
    public string? Destination { get; }

    /// <summary>Time from sending to the end of the body.</summary>
    public double LatencyMs { get; }

    /// <summary>True for a 2xx answer with its whole body.</summary>
    public bool IsSuccess => ErrorCode is null && Status is >= 200 and < 300;

    /// <summary>The response body (empty when none was read).</summary>
    public ReadOnlySpan<byte> Body => _buffer is null ? default : _buffer.AsSpan(0, _length);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>
/// Sends the gateway's own calls (structured-output repairs; retries and fallbacks next) to a provider cluster the
/// way the proxy path does: the destination from YARP's cluster state (only available — healthy — destinations,
/// picked by the cluster's load-balancing policy), YARP's forwarder <see cref="HttpMessageInvoker"/> for the
/// cluster (no redirects, no cookies, no decompression, the cluster's HTTP settings), and the provider's header
/// rules and credential swap (<see cref="UpstreamHeaders"/>). There is no second HTTP client to a provider.
/// </summary>
internal sealed partial class UpstreamInvoker
{
    private const int ReadBufferSize = 16 * 1024;

    private readonly IProxyStateLookup _proxyState;
    private readonly FrozenDictionary<string, ILoadBalancingPolicy> _loadBalancers;
    private readonly IOptionsMonitor<GatewayOptions> _options;
    private readonly ILogger<UpstreamInvoker> _logger;

    public UpstreamInvoker(
        IProxyStateLookup proxyState, IEnumerable<ILoadBalancingPolicy> loadBalancers, IOptionsMonitor<GatewayOptions> options, ILogger<UpstreamInvoker> logger)
    {
        _proxyState = proxyState;
        _loadBalancers = loadBalancers.ToFrozenDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        _options = options;
        _logger = logger;
    }

    /// <summary>
    /// POSTs <paramref name="body"/> to the request's route on its provider's cluster and reads the answer (bounded by
    /// <c>Gateway:MaxResponseBodyBytes</c>) within <c>Gateway:UpstreamTimeout</c>. Never throws for upstream failures:
    /// they come back as <see cref="UpstreamResponse.ErrorCode"/>.
    /// </summary>
    public async Task<UpstreamResponse> SendAsync(HttpContext http, LlmExchange exchange, ReadOnlyMemory<byte> body, UpstreamAttempt attempt)
    {
        // The provider that served the answer (a fallback's after a fallback, issue #13): a repair goes where the answer came from.
        var provider = exchange.UpstreamProvider ?? throw new InvalidOperationException("The request has no provider.");
        var start = Stopwatch.GetTimestamp();
        if (!_proxyState.TryGetCluster(provider.Id, out var cluster) || cluster.Model.HttpClient is not { } client)
        {
            return Failed("upstream_unavailable", null, start);
        }

        var destination = PickDestination(http, cluster);
        if (destination is null)
        {
            LogNoDestination(_logger, provider.Id, exchange.RequestId);
            return Failed("upstream_unavailable", null, start);
        }

        var options = _options.CurrentValue;
        var requestConfig = cluster.Model.Config.HttpRequest;
        using var message = new HttpRequestMessage(HttpMethod.Post, (Uri?)null)
        {
            Version = requestConfig?.Version ?? HttpVersion.Version20,
            VersionPolicy = requestConfig?.VersionPolicy ?? HttpVersionPolicy.RequestVersionOrLower,
            Content = new ReadOnlyMemoryContent(body),
        };
        message.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        provider.Headers.CopyRequestHeaders(http.Request.Headers, message, static (m, name, values) =>
        {
            if (!name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase) && !name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                m.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        });

        var path = provider.Options.MapPath(exchange.IsTranslated ? Translation.ProviderDialects.PathOf(exchange.UpstreamDialect) : http.Request.Path);
        var query = QueryString.Empty;
        if (UpstreamHeaders.ApplyGatewayHeaders(message.Headers, provider, exchange, attempt.RequestId) is { } azure)
        {
            path = azure.Path;
            query = QueryString.Create("api-version", azure.ApiVersion);
        }

        if (provider.EntraId is { } entraId)
        {
            try
            {
                message.Headers.TryAddWithoutValidation("Authorization", await entraId.GetAuthorizationAsync(http.RequestAborted));
            }
            catch (Providers.EntraIdUnavailableException)
            {
                return Failed("upstream_auth_failed", destination.DestinationId, start);
            }
        }

        var destinationAddress = destination.Model.Config.Address;
        message.RequestUri = RequestUtilities.MakeDestinationAddress(destinationAddress, path, query);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        var remaining = options.RemainingFor(exchange.ElapsedMs);
        timeout.CancelAfter(remaining < options.UpstreamTimeout ? remaining : options.UpstreamTimeout);
        try
        {
            using var upstream = await client.SendAsync(message, timeout.Token);
            var status = (int)upstream.StatusCode;
            var (buffer, length) = await ReadBoundedAsync(upstream.Content, options.MaxResponseBodyBytes, timeout.Token);
            // Anything but a 2xx is a failed call; a 3xx is never followed (the forwarder's client does not redirect).
            var code = status is < 200 or >= 300 ? "upstream_" + status.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
            return new UpstreamResponse(status, buffer, length, code, destination.DestinationId, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException or InvalidDataException)
        {
            LogCallFailed(_logger, attempt.Kind, attempt.Number, exchange.RequestId, destination.DestinationId, ex.GetType().Name);
            var code = ex is InvalidDataException ? "response_too_large"
                : ex is OperationCanceledException && !http.RequestAborted.IsCancellationRequested ? "upstream_timeout"
                : "upstream_unavailable";
            return Failed(code, destination.DestinationId, start);
        }
    }

    /// <summary>
    /// Sends a streamed call (a stream continuation, issue #13) to <paramref name="destinationId"/> of the provider of the
    /// request's current attempt, with that attempt's key, and returns the response once its headers arrived (the
    /// body is the caller's to read and dispose). Null with <paramref name="failure"/> set when no response arrived
    /// within <paramref name="headersTimeout"/>, the connection failed, or the destination is unknown.
    /// </summary>
    public async Task<(HttpResponseMessage? Response, Core.Resilience.AttemptOutcomeKind Failure)> SendStreamingAsync(
        HttpContext http, LlmExchange exchange, ReadOnlyMemory<byte> body, string requestId, string destinationId, TimeSpan headersTimeout)
    {
        var provider = exchange.UpstreamProvider ?? throw new InvalidOperationException("The request has no provider.");
        if (!_proxyState.TryGetCluster(provider.Id, out var cluster) || cluster.Model.HttpClient is not { } client
            || !cluster.Destinations.TryGetValue(destinationId, out var destination))
        {
            return (null, Core.Resilience.AttemptOutcomeKind.ConnectFailure);
        }

        var requestConfig = cluster.Model.Config.HttpRequest;
        using var message = new HttpRequestMessage(HttpMethod.Post, (Uri?)null)
        {
            Version = requestConfig?.Version ?? HttpVersion.Version20,
            VersionPolicy = requestConfig?.VersionPolicy ?? HttpVersionPolicy.RequestVersionOrLower,
            Content = new ReadOnlyMemoryContent(body),
        };
        message.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        provider.Headers.CopyRequestHeaders(http.Request.Headers, message, static (m, name, values) =>
        {
            if (!name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase) && !name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                m.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        });

        var path = http.Request.Path;
        var query = QueryString.Empty;
        if (UpstreamHeaders.ApplyGatewayHeaders(message.Headers, provider, exchange, requestId) is { } azure)
        {
            path = azure.Path;
            query = QueryString.Create("api-version", azure.ApiVersion);
        }

        message.RequestUri = RequestUtilities.MakeDestinationAddress(destination.Model.Config.Address, path, query);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        timeout.CancelAfter(headersTimeout);
        try
        {
            var response = await client.SendAsync(message, timeout.Token);
            return (response, default);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            LogCallFailed(_logger, UpstreamAttemptKind.Primary, 0, requestId, destinationId, ex.GetType().Name);
            var kind = http.RequestAborted.IsCancellationRequested ? Core.Resilience.AttemptOutcomeKind.ClientAborted
                : ex is OperationCanceledException ? Core.Resilience.AttemptOutcomeKind.ResponseHeadersTimeout
                : ex is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError } ? Core.Resilience.AttemptOutcomeKind.ConnectFailure
                : Core.Resilience.AttemptOutcomeKind.ResetBeforeResponse;
            return (null, kind);
        }
    }

    private DestinationState? PickDestination(HttpContext http, ClusterState cluster)
    {
        var available = cluster.DestinationsState.AvailableDestinations;
        if (available.Count <= 1)
        {
            return available.Count == 0 ? null : available[0];
        }

        var policyName = cluster.Model.Config.LoadBalancingPolicy ?? LoadBalancingPolicies.PowerOfTwoChoices;
        return _loadBalancers.TryGetValue(policyName, out var policy)
            ? policy.PickDestination(http, cluster, available)
            : available[0];
    }

    private static UpstreamResponse Failed(string code, string? destination, long start) =>
        new(0, null, 0, code, destination, Stopwatch.GetElapsedTime(start).TotalMilliseconds);

    private static async Task<(byte[] Buffer, int Length)> ReadBoundedAsync(HttpContent content, long cap, CancellationToken cancellationToken)
    {
        var expected = content.Headers.ContentLength is { } length && length < cap ? (int)length + 1 : ReadBufferSize;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(expected, 256));
        var written = 0;
        try
        {
            await using var stream = await content.ReadAsStreamAsync(cancellationToken);
            while (true)
            {
                if (written == buffer.Length)
                {
                    var grown = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, written).CopyTo(grown);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = grown;
                }

                var read = await stream.ReadAsync(buffer.AsMemory(written), cancellationToken);
                if (read == 0)
                {
                    return (buffer, written);
                }

                written += read;
                if (written > cap)
                {
                    throw new InvalidDataException("The upstream response exceeds Gateway:MaxResponseBodyBytes.");
                }
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    [LoggerMessage(2350, LogLevel.Warning, "No available destination in cluster {Provider} for a gateway call of request {RequestId}")]
    private static partial void LogNoDestination(ILogger logger, string provider, string requestId);

    [LoggerMessage(2351, LogLevel.Warning, "Upstream {Kind} call {Number} for request {RequestId} to {Destination} failed: {Reason}")]
    private static partial void LogCallFailed(ILogger logger, UpstreamAttemptKind kind, int number, string requestId, string destination, string reason);
}
