using System.Net.Sockets;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Resilience;
using Yarp.ReverseProxy.Forwarder;

namespace TokenGateway.Resilience;

/// <summary>
/// YARP's forwarder client factory with the connect timeout of issue #13: <c>Resilience:Timeouts:Connect</c> by
/// default, or the attempt's own (a model's or a team's override, carried in the request's options under
/// <see cref="ConnectTimeoutKey"/>), applied to each new connection. A connect timeout is a connect failure (retried).
/// </summary>
/// <remarks>
/// The timeout lives in <see cref="SocketsHttpHandler.ConnectCallback"/> rather than <c>ConnectTimeout</c> so one
/// pooled handler per cluster serves every model and team: the callback reads the request that caused the connection.
/// Only new connections pay for it; requests on pooled connections never see it.
/// </remarks>
internal sealed class ConnectTimeoutHttpClientFactory(IOptionsMonitor<ResilienceOptions> options) : ForwarderHttpClientFactory
{
    /// <summary>The request option carrying an attempt's connect timeout when it differs from the gateway default.</summary>
    public static readonly HttpRequestOptionsKey<TimeSpan> ConnectTimeoutKey = new("TokenGateway.ConnectTimeout");

    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.ConnectTimeout = Timeout.InfiniteTimeSpan; // the callback applies the attempt's own
        handler.ConnectCallback = ConnectAsync;
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var timeout = context.InitialRequestMessage.Options.TryGetValue(ConnectTimeoutKey, out var own) ? own : options.CurrentValue.Timeouts.Connect;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cts.Token);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            // Surfaces as a connect failure (HttpRequestError.ConnectionError), which the planner retries.
            throw new SocketException((int)SocketError.TimedOut);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
