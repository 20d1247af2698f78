using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using TokenGateway.Hosting;
using TokenGateway.Providers;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace TokenGateway.Proxy;

/// <summary>
/// Builds YARP routes (one per LLM surface) and clusters (one per provider) from the gateway's own configuration.
/// </summary>
/// <remarks>
/// Routes all point at the first provider; the parse stage reassigns each request to the cluster of its model, so a
/// request can never pick its upstream (no base URL, host or path from the request reaches the destination).
/// </remarks>
internal sealed class GatewayProxyConfigProvider : IProxyConfigProvider
{
    public static readonly string[] LlmPaths =
    [
        "/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages", "/v1/messages/count_tokens",
    ];

    private readonly GatewayProxyConfig _config;

    public GatewayProxyConfigProvider(
        ProviderRegistry providers, IOptions<GatewayOptions> options, IOptions<Core.Resilience.ResilienceOptions> resilience, Core.Models.ModelCatalog catalog)
    {
        // Time to response headers (YARP's activity timeout, which costs nothing per request): the longest configured
        // header timeout (Resilience:Timeouts:ResponseHeaders, or a model's own), never beyond the request's deadline.
        // Shorter per-attempt timeouts (a model's or a team's) are armed per attempt by ResilienceMiddleware.
        var timeout = resilience.Value.Timeouts.ResponseHeaders ?? options.Value.UpstreamTimeout;
        foreach (var card in catalog.Models)
        {
            if (card.Resilience?.Timeouts?.ResponseHeaders is { } own && own > timeout)
            {
                timeout = own;
            }
        }

        if (timeout > options.Value.RequestDeadline)
        {
            timeout = options.Value.RequestDeadline;
        }

        var clusters = providers.All.Select(p => new ClusterConfig
        {
            ClusterId = p.Id,
            LoadBalancingPolicy = p.Options.LoadBalancingPolicy,
            Destinations = p.Destinations
                .Select((address, i) => (address, i))
                .ToDictionary(x => $"{p.Id}-{x.i}", x => new DestinationConfig { Address = x.address }),
            HttpRequest = new ForwarderRequestConfig { ActivityTimeout = timeout },
            HttpClient = new HttpClientConfig { EnableMultipleHttp2Connections = true },
            // Passive health (issue #13): the circuit breakers set each destination's health (CircuitBreakerRegistry),
            // and YARP's load balancer skips the unhealthy ones; the named policy adds no judgement of its own.
            HealthCheck = new HealthCheckConfig
            {
                Passive = new PassiveHealthCheckConfig { Enabled = true, Policy = Resilience.BreakerPassiveHealthPolicy.PolicyName },
            },
        }).ToList();

        var defaultCluster = clusters.FirstOrDefault()?.ClusterId
            ?? throw new InvalidOperationException("No provider is configured (section Providers).");

        var routes = LlmPaths.Select(path => new RouteConfig
        {
            RouteId = "llm" + path.Replace('/', '-'),
            ClusterId = defaultCluster,
            Match = new RouteMatch { Path = path, Methods = ["POST"] },
            Order = 0,
        }).ToList();

        _config = new GatewayProxyConfig(routes, clusters);
    }

    public IProxyConfig GetConfig() => _config;

    private sealed class GatewayProxyConfig(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters) : IProxyConfig
    {
        public IReadOnlyList<RouteConfig> Routes { get; } = routes;
        public IReadOnlyList<ClusterConfig> Clusters { get; } = clusters;
        public IChangeToken ChangeToken { get; } = new CancellationChangeToken(CancellationToken.None);
    }
}
