using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Security;

/// <summary>
/// Issue #12 "also" / matrix B7: every endpoint in the endpoint data source (minimal APIs, dashboard, /metrics and the
/// YARP proxy routes) is either explicitly anonymous — and on the short list below — or refuses a missing and a wrong
/// key. A new endpoint that forgets auth fails here.
/// </summary>
public sealed class EndpointWalkTests
{
    /// <summary>The only endpoints allowed to answer without a key (method + route pattern).</summary>
    private static readonly HashSet<string> _anonymous =
    [
        "GET /healthz",
        "GET /readyz",
        "GET /dashboard/login",
        "POST /dashboard/login",
        "POST /dashboard/logout",        // clears the caller's own cookie, nothing else
        "GET /dashboard/assets/{name}",
    ];

    [Fact]
    public async Task EveryEndpoint_IsExplicitlyAnonymous_OrRefusesMissingAndWrongKeys()
    {
        // Wrong keys are guesses; lift the back-off so every endpoint's own answer is seen (AdminThrottleTests covers it).
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Security:AdminThrottle:FreeFailures"] = "100000" });
        var endpoints = server.Services.GetRequiredService<EndpointDataSource>().Endpoints;
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(server.Address) };
        var walked = new List<string>();
        var failures = new List<string>();

        foreach (var endpoint in endpoints)
        {
            var route = Assert.IsType<RouteEndpoint>(endpoint, exactMatch: false);
            var pattern = "/" + route.RoutePattern.RawText!.TrimStart('/');
            var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET", "POST"];
            var isAnonymous = endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null;
            foreach (var method in methods)
            {
                var name = $"{method} {pattern}";
                walked.Add(name);
                if (isAnonymous || _anonymous.Contains(name))
                {
                    if (!(isAnonymous && _anonymous.Contains(name)))
                    {
                        failures.Add($"{name}: anonymous={isAnonymous} but listed={_anonymous.Contains(name)}");
                    }

                    continue;
                }

                var path = Concrete(route);
                var keys = new List<(string Label, string? Key)>
                {
                    ("missing", null),
                    ("wrong team key", "tg-" + new string('Z', 43)),
                    ("wrong admin key", "tga-" + new string('Y', 43)),
                };
                if (!pattern.StartsWith("/v1/", StringComparison.Ordinal))
                {
                    keys.Add(("a valid team key", server.VirtualKey)); // a team key is not an admin key
                }

                foreach (var (label, key) in keys)
                {
                    using var request = new HttpRequestMessage(new HttpMethod(method), path);
                    if (key is not null)
                    {
                        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
                    }

                    if (method is "POST" or "PUT" or "PATCH")
                    {
                        request.Content = new StringContent("{\"model\":\"gpt-4o-mini\",\"name\":\"walk\",\"messages\":[]}", Encoding.UTF8, "application/json");
                    }

                    using var response = await http.SendAsync(request);
                    if (!Refused(response))
                    {
                        failures.Add($"{name} ({path}) with {label} key: {(int)response.StatusCode}");
                    }
                }
            }
        }

        Assert.Empty(failures);
        // The walk saw every kind of endpoint: proxy routes, admin API, dashboard, metrics, dry run, models.
        Assert.Contains("POST /v1/chat/completions", walked);
        Assert.Contains("POST /v1/messages", walked);
        Assert.Contains("POST /admin/teams", walked);
        Assert.Contains("GET /metrics", walked);
        Assert.Contains("POST /v1/tokengateway/optimize", walked);
        Assert.Contains("GET /v1/models", walked);
        Assert.Contains("GET /dashboard", walked);
        Assert.True(walked.Count > 25, $"only {walked.Count} endpoints walked");
    }

    private static bool Refused(HttpResponseMessage response) =>
        response.StatusCode == HttpStatusCode.Unauthorized
        // The dashboard page sends a browser without a session to the login page.
        || (response.StatusCode == HttpStatusCode.Redirect && response.Headers.Location?.OriginalString == "/dashboard/login");

    private static string Concrete(RouteEndpoint route)
    {
        var segments = route.RoutePattern.PathSegments.Select(segment => string.Concat(segment.Parts.Select(part => part switch
        {
            Microsoft.AspNetCore.Routing.Patterns.RoutePatternLiteralPart literal => literal.Content,
            Microsoft.AspNetCore.Routing.Patterns.RoutePatternSeparatorPart separator => separator.Content,
            // A value that satisfies the usual constraints ({version:int}), so the route matches and auth is what answers.
            Microsoft.AspNetCore.Routing.Patterns.RoutePatternParameterPart parameter => parameter.ParameterPolicies.Count > 0 ? "1" : "walk-" + parameter.Name,
            _ => "x",
        })));
        return "/" + string.Join('/', segments);
    }
}
