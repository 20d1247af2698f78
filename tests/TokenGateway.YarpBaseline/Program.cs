using Yarp.ReverseProxy.Configuration;

namespace TokenGateway.YarpBaseline;

/// <summary>
/// The proxy baseline of the performance harness (issue #8): a plain YARP pass-through that forwards <c>/v1/*</c> to
/// <c>Baseline:Destination</c> with YARP's defaults and nothing else — no auth, parsing, metering or logging per request.
/// <c>dotnet TokenGateway.YarpBaseline.dll --urls http://127.0.0.1:9300 --Baseline:Destination=http://127.0.0.1:9100/</c>.
/// </summary>
internal static class YarpBaselineProgram
{
    public static void Main(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var destination = builder.Configuration["Baseline:Destination"]
            ?? throw new InvalidOperationException("Set Baseline:Destination to the upstream base URL.");

        RouteConfig[] routes =
        [
            new() { RouteId = "v1", ClusterId = "upstream", Match = new RouteMatch { Path = "/v1/{**rest}" } },
        ];
        ClusterConfig[] clusters =
        [
            new()
            {
                ClusterId = "upstream",
                Destinations = new Dictionary<string, DestinationConfig>(StringComparer.Ordinal)
                {
                    ["upstream"] = new() { Address = destination },
                },
            },
        ];
        builder.Services.AddReverseProxy().LoadFromMemory(routes, clusters);

        var app = builder.Build();
        app.MapGet("/healthz", () => "ok");
        app.MapReverseProxy();
        app.Run();
    }
}
