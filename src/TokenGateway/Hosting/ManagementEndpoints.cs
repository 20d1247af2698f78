using Microsoft.AspNetCore.Routing.Matching;

namespace TokenGateway.Hosting;

/// <summary>
/// The management listener (<c>Management:Urls</c>, e.g. <c>http://127.0.0.1:9464</c>): when set, Kestrel also
/// listens there, and that port serves only <c>/metrics</c>, <c>/healthz</c> and <c>/readyz</c>, without auth, for a
/// network-isolated scrape; <c>/metrics</c> is then not served on the API port. Requests are told apart by the local
/// port of the connection (not the <c>Host</c> header, which the client chooses).
/// </summary>
internal sealed class ManagementPorts
{
    public const string UrlsKey = "Management:Urls";

    private readonly int[] _ports;

    private ManagementPorts(string[] urls, int[] ports)
    {
        Urls = urls;
        _ports = ports;
    }

    /// <summary>The management listen URLs (empty when not configured).</summary>
    public IReadOnlyList<string> Urls { get; }

    /// <summary>True when a management listener is configured.</summary>
    public bool Enabled => _ports.Length > 0;

    /// <summary>True when the connection came in on a management port.</summary>
    public bool IsManagement(HttpContext context)
    {
        var port = context.Connection.LocalPort;
        foreach (var p in _ports)
        {
            if (p == port)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Reads <c>Management:Urls</c> (semicolon-separated); each must name a fixed port.</summary>
    public static ManagementPorts From(IConfiguration configuration)
    {
        var urls = (configuration[UrlsKey] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var ports = new int[urls.Length];
        for (var i = 0; i < urls.Length; i++)
        {
            BindingAddress address;
            try
            {
                address = BindingAddress.Parse(urls[i]);
            }
            catch (FormatException ex)
            {
                throw new InvalidOperationException($"{UrlsKey}: '{urls[i]}' is not a listen URL (e.g. http://127.0.0.1:9464).", ex);
            }

            if (address.Port <= 0)
            {
                throw new InvalidOperationException($"{UrlsKey}: '{urls[i]}' must name a fixed port (e.g. http://127.0.0.1:9464): the port is how management requests are recognised.");
            }

            ports[i] = address.Port;
        }

        return new ManagementPorts(urls, ports);
    }
}

/// <summary>Marks an endpoint as served on the management port (and, unless <see cref="ManagementOnly"/>, on the API port too).</summary>
internal sealed class ManagementEndpointMetadata(bool managementOnly)
{
    public static readonly ManagementEndpointMetadata AlsoOnManagement = new(false);
    public static readonly ManagementEndpointMetadata OnlyOnManagement = new(true);

    public bool ManagementOnly { get; } = managementOnly;
}

/// <summary>
/// Route filter: on a management port only endpoints carrying <see cref="ManagementEndpointMetadata"/> match; on any
/// other port, endpoints marked management-only do not (404). Inactive (no per-request cost) without a management port.
/// </summary>
internal sealed class ManagementPortMatcherPolicy(ManagementPorts ports) : MatcherPolicy, IEndpointSelectorPolicy
{
    public override int Order => 0;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) => ports.Enabled;

    public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
    {
        var onManagement = ports.IsManagement(httpContext);
        for (var i = 0; i < candidates.Count; i++)
        {
            if (!candidates.IsValidCandidate(i))
            {
                continue;
            }

            var metadata = candidates[i].Endpoint.Metadata.GetMetadata<ManagementEndpointMetadata>();
            var allowed = onManagement ? metadata is not null : metadata is null || !metadata.ManagementOnly;
            if (!allowed)
            {
                candidates.SetValidity(i, false);
            }
        }

        return Task.CompletedTask;
    }
}
