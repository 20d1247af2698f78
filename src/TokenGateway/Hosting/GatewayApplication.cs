using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;
using TokenGateway.Auth;
using TokenGateway.Budgets;
using TokenGateway.Core.Budgets;
using TokenGateway.Endpoints;
using TokenGateway.Providers;
using TokenGateway.Proxy;
using TokenGateway.StructuredOutput;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Transforms;

namespace TokenGateway.Hosting;

/// <summary>The composition root: builds the gateway so <c>Program</c> and tests share one code path.</summary>
public static class GatewayApplication
{
    /// <summary>Creates the builder with every gateway service registered; callers may add configuration or services.</summary>
    public static WebApplicationBuilder CreateBuilder(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        // The shipped model catalogue and provider list are the lowest-precedence sources: appsettings, environment
        // variables and command-line arguments override or extend them.
        var defaults = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("catalog.json", optional: false)
            .AddJsonFile("providers.json", optional: false)
            .Build();
        builder.Configuration.Sources.Insert(0, new ChainedConfigurationSource { Configuration = defaults, ShouldDisposeConfiguration = true });
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            builder.WebHost.UseUrls("http://localhost:8080");
        }

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            // Secure default for every endpoint (admin API, dashboard, anything new): 413 over 1 MiB. The LLM routes and
            // the dry-run optimizer raise their own request's limit to Gateway:MaxRequestBodyBytes (RequestBodyLimits).
            k.Limits.MaxRequestBodySize = RequestBodyLimits.DefaultMaxBytes;
        });

        var services = builder.Services;
        services.AddSerilog((sp, lc) =>
        {
            var gateway = sp.GetRequiredService<IOptions<GatewayOptions>>().Value;
            lc.ReadFrom.Configuration(builder.Configuration)
                .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
                .MinimumLevel.Override("Yarp", LogEventLevel.Warning)
                .MinimumLevel.Override("System.Net.Http", LogEventLevel.Warning)
                .Enrich.FromLogContext();
            TokenGateway.Telemetry.HostingDiagnosticsLog.Configure(lc, builder.Configuration); // no per-request activity or scope (issue #17)
            if (gateway.JsonLogs)
            {
                lc.WriteTo.Console(new CompactJsonFormatter());
            }
            else
            {
                lc.WriteTo.Console();
            }
        });

        services.AddOptions<GatewayOptions>().BindConfiguration(GatewayOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>();
        services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayDeadlineValidator>();
        services.AddOptions<ProvidersOptions>().Configure<IConfiguration>((o, c) => o.Bind(c)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ProvidersOptions>, ProvidersOptionsValidator>();
        services.Configure<HostOptions>(o => o.ShutdownTimeout = builder.Configuration.GetValue("Gateway:ShutdownTimeout", TimeSpan.FromSeconds(30)));
        services.AddProblemDetails();
        services.TryAddSingleton(TimeProvider.System);

        // First: its schema initializer must run before hosted services that use the stores. PostgreSQL when
        // ConnectionStrings:Postgres is set, else the embedded SQLite file.
        services.AddTokenGatewayStorage();
        services.AddTokenGatewayCore(); // tokenizers, pricing, the validated model catalogue, the optimizer
        services.AddSingleton<ProviderRegistry>();
        services.AddSingleton(static sp => new VirtualKeyAuthenticator(
            sp.GetRequiredService<TokenGateway.Core.Teams.ITeamStore>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<TokenGateway.Core.Changes.IChangeNotifier>(),
            sp.GetService<IOptions<TokenGateway.Core.Changes.ChangeOptions>>()?.Value.PollInterval));
        services.AddSingleton<AdminKeyService>();
        services.AddHostedService(sp => sp.GetRequiredService<AdminKeyService>());
        services.AddAdminAuthentication();
        services.AddSingleton(sp => ManagementPorts.From(sp.GetRequiredService<IConfiguration>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ManagementPortMatcherPolicy>());
        services.AddSingleton<ReadinessProbe>();
        services.AddSingleton(static sp => new TokenGateway.Telemetry.RequestLogLevels(sp.GetRequiredService<IOptions<GatewayOptions>>().Value.RequestLogLevel));
        services.AddSingleton<ExchangeCompletion>();
        services.AddSingleton<LlmResponseHandler>();
        services.AddSingleton<TokenGateway.Proxy.Upstream.UpstreamInvoker>();
        services.AddOptions<AlertOptions>().BindConfiguration(AlertOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AlertOptions>, AlertOptionsDataValidator>();
        services.AddSingleton<IValidateOptions<AlertOptions>, AlertOptionsValidator>();
        services.AddHttpClient(WebhookSoftAlertSink.HttpClientName);
        services.AddSingleton<WebhookSoftAlertSink>();
        services.AddSingleton<ISoftAlertSink>(sp => sp.GetRequiredService<WebhookSoftAlertSink>());
        services.AddHostedService(sp => sp.GetRequiredService<WebhookSoftAlertSink>());
        services.AddTokenGatewayRedis(); // before the budgets: with ConnectionStrings:Redis, counters and change notifications live there
        services.AddTokenGatewayBudgets(builder.Configuration);
        services.AddGatewayTelemetry(builder.Configuration);
        services.AddGatewayDashboard();
        services.AddGatewayInsights();
        services.AddStructuredOutput();
        services.AddGatewayResponseCache(); // after every other response hook: it captures the answer the client gets
        services.AddGatewayResilience(); // options, start-up validation and breakers; the invoker wiring is issue #13's next step

        services.AddSingleton<IProxyConfigProvider, GatewayProxyConfigProvider>();
        services.AddReverseProxy().AddTransforms(context =>
        {
            context.UseDefaultForwarders = false;
            // Headers cross the gateway by allowlist only (per provider, UpstreamHeaders): YARP's copy-everything is off.
            context.CopyRequestHeaders = false;
            context.CopyResponseHeaders = false;
            context.AddRequestTransform(ProviderRequestTransform.ApplyAsync);
            var handler = context.Services.GetRequiredService<LlmResponseHandler>();
            context.AddResponseTransform(handler.HandleAsync);
        });

        return builder;
    }

    /// <summary>
    /// True when the request's endpoint carries authorization metadata (an <c>[Authorize]</c>/<c>RequireAuthorization</c>
    /// policy or requirement): only those need <c>AuthorizationMiddleware</c> when no fallback policy is set, and the
    /// endpoint middleware refuses to run them without it.
    /// </summary>
    internal static bool HasAuthorizationMetadata(HttpContext context)
    {
        var metadata = context.GetEndpoint()?.Metadata;
        return metadata is not null
            && (metadata.GetMetadata<Microsoft.AspNetCore.Authorization.IAuthorizeData>() is not null
                || metadata.GetMetadata<Microsoft.AspNetCore.Authorization.AuthorizationPolicy>() is not null
                || metadata.GetMetadata<Microsoft.AspNetCore.Authorization.IAuthorizationRequirementData>() is not null);
    }

    /// <summary>Builds the app and maps the middleware pipeline and endpoints.</summary>
    public static WebApplication Build(WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var app = builder.Build();
        app.UseSerilogRequestLogging(o =>
        {
            // The same logger ExchangeCompletion checks before building the event's properties (no static Log.Logger).
            o.Logger = app.Services.GetRequiredService<Serilog.ILogger>();
            o.MessageTemplate = "HTTP {RequestMethod} {RequestPath} responded {StatusCode} in {Elapsed:0.0} ms";
            // Successes at Gateway:RequestLogLevel (default Debug), refusals and failures at their levels (issue #17).
            var levels = app.Services.GetRequiredService<TokenGateway.Telemetry.RequestLogLevels>();
            o.GetLevel = (context, _, exception) => levels.For(context, exception);
        });

        // Endpoints with an admin policy are refused here, after routing and before the endpoint runs: no body is read
        // for an unauthenticated caller. Endpoints without authorization metadata (the LLM routes) pass straight through:
        // with no fallback policy, AuthorizationMiddleware would only mark them in HttpContext.Items (an items dictionary
        // per request) and add an async frame around the whole proxy pipeline (issue #17), so they skip it.
        if (app.Services.GetRequiredService<IOptions<Microsoft.AspNetCore.Authorization.AuthorizationOptions>>().Value.FallbackPolicy is null)
        {
            app.UseWhen(HasAuthorizationMetadata, static branch => branch.UseAuthorization());
            ((IApplicationBuilder)app).Properties["__AuthorizationMiddlewareSet"] = true; // set in the branch's own copy only
        }
        else
        {
            app.UseAuthorization();
        }

        // The admin policies name their schemes, so the authorization middleware authenticates only where a policy
        // asks. The AuthenticationMiddleware that WebApplication would otherwise insert for every request (a feature
        // and a scoped handler provider per request, LLM routes included) has nothing to do: mark it as present.
        ((IApplicationBuilder)app).Properties["__AuthenticationMiddlewareSet"] = true;
        // Minimal-API binding answers a body over the 1 MiB cap with a bare 413; give admin callers the API's
        // ProblemDetails shape (stable code) like every other admin error.
        app.UseWhen(static c => c.Request.Path.StartsWithSegments("/admin"), admin => admin.UseStatusCodePages(static context =>
            context.HttpContext.Response.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? AdminProblems.Create(StatusCodes.Status413PayloadTooLarge, "request_too_large",
                    $"The request body exceeds the admin API's limit of {RequestBodyLimits.DefaultMaxBytes} bytes.").ExecuteAsync(context.HttpContext)
                : Task.CompletedTask));

        var management = app.Services.GetRequiredService<ManagementPorts>();
        if (management.Enabled)
        {
            // Kestrel listens on the API URLs and the management URLs; ManagementPortMatcherPolicy keeps them apart.
            var apiUrls = (app.Configuration[WebHostDefaults.ServerUrlsKey] ?? "http://localhost:8080")
                .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var url in apiUrls.Concat(management.Urls))
            {
                app.Urls.Add(url);
            }
        }

        app.MapGet("/healthz", () => Results.Ok(new { status = "ok" }))
            .AllowAnonymous().WithMetadata(ManagementEndpointMetadata.AlsoOnManagement);
        app.MapGet("/readyz", async (ReadinessProbe probe, CancellationToken ct) => await probe.CheckAsync(ct) is var report && report.Ready
                ? Results.Ok(new { status = report.Status, dependencies = report.Dependencies })
                : Results.Json(new { status = report.Status, dependencies = report.Dependencies }, statusCode: 503))
            .AllowAnonymous().WithMetadata(ManagementEndpointMetadata.AlsoOnManagement);
        var metrics = app.MapPrometheusScrapingEndpoint();
        if (management.Enabled)
        {
            metrics.AllowAnonymous().WithMetadata(ManagementEndpointMetadata.OnlyOnManagement);
        }
        else
        {
            metrics.RequireAuthorization(AdminAuthentication.AdminKeyPolicy); // per-team cost and budgets: admin only
        }

        app.MapModelsEndpoint();
        app.MapOptimizeDryRun();
        app.MapGroup("/admin").RequireAuthorization(AdminAuthentication.AdminPolicy)
            .MapAdminTeams().MapAdminUsage().MapAdminPolicies().MapAdminSchemas().MapAdminDashboardData().MapAdminInsights();
        app.MapDashboard();

        app.MapReverseProxy(proxy =>
        {
            proxy.UseMiddleware<LlmExchangeMiddleware>();
            proxy.UseMiddleware<VirtualKeyAuthMiddleware>();
            proxy.UseMiddleware<LlmParseMiddleware>();
            proxy.UseMiddleware<MeteringMiddleware>();
            proxy.UseMiddleware<AdmissionMiddleware>();
            proxy.UseMiddleware<OptimizationMiddleware>();
            proxy.UseMiddleware<StructuredOutputMiddleware>();
            proxy.UseMiddleware<ForwardPreparationMiddleware>();
            proxy.UseMiddleware<TokenGateway.Caching.ResponseCacheMiddleware>(); // the body to send is final: look it up
            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
            proxy.UseMiddleware<ResilienceMiddleware>(); // around the forwarder: retries, breakers, fail fast
        });

        return app;
    }
}
