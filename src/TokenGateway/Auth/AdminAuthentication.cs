using System.Globalization;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using TokenGateway.Dashboard;
using TokenGateway.Endpoints;

namespace TokenGateway.Auth;

/// <summary>
/// The admin key as an ASP.NET Core authentication scheme, so the authorization middleware refuses a caller before the
/// endpoint runs — before model binding reads a byte of the body.
/// </summary>
internal static class AdminAuthentication
{
    /// <summary>Admin key (<c>Authorization: Bearer</c> / <c>x-api-key</c>), or a dashboard session cookie on GET/HEAD.</summary>
    public const string KeyOrSessionScheme = "AdminKeyOrSession";

    /// <summary>Admin key only (used by <c>/metrics</c> on the API port).</summary>
    public const string KeyScheme = "AdminKey";

    /// <summary>The admin API's policy.</summary>
    public const string AdminPolicy = "Admin";

    /// <summary>Admin key only.</summary>
    public const string AdminKeyPolicy = "AdminKeyOnly";

    public static IServiceCollection AddAdminAuthentication(this IServiceCollection services)
    {
        services.AddOptions<AdminThrottleOptions>().BindConfiguration(AdminThrottleOptions.SectionName);
        services.AddSingleton<AdminLoginThrottle>();
        // Two schemes and no default: requests to endpoints without an admin policy never run the handler.
        services.AddAuthentication()
            .AddScheme<AdminKeyAuthenticationOptions, AdminKeyAuthenticationHandler>(KeyOrSessionScheme, o => o.AllowDashboardSession = true)
            .AddScheme<AdminKeyAuthenticationOptions, AdminKeyAuthenticationHandler>(KeyScheme, o => o.AllowDashboardSession = false);
        services.AddAuthorizationBuilder()
            .AddPolicy(AdminPolicy, p => p.AddAuthenticationSchemes(KeyOrSessionScheme).RequireAuthenticatedUser())
            .AddPolicy(AdminKeyPolicy, p => p.AddAuthenticationSchemes(KeyScheme).RequireAuthenticatedUser());
        return services;
    }
}

/// <summary>Options of <see cref="AdminKeyAuthenticationHandler"/>.</summary>
internal sealed class AdminKeyAuthenticationOptions : AuthenticationSchemeOptions
{
    /// <summary>Accept the dashboard session cookie on safe methods (GET/HEAD).</summary>
    public bool AllowDashboardSession { get; set; }
}

/// <summary>
/// Authenticates the admin key from headers only (never the body); failed keys count against the client address's
/// back-off (<see cref="AdminLoginThrottle"/>). Challenges answer 401 <c>invalid_admin_key</c> or, while the address is
/// blocked, 429 <c>too_many_attempts</c> with <c>Retry-After</c> — both as ProblemDetails.
/// </summary>
internal sealed class AdminKeyAuthenticationHandler(
    IOptionsMonitor<AdminKeyAuthenticationOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    AdminKeyService admin, DashboardSessions sessions, AdminLoginThrottle throttle)
    : AuthenticationHandler<AdminKeyAuthenticationOptions>(options, logger, encoder)
{
    private TimeSpan? _retryAfter;

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var address = Context.Connection.RemoteIpAddress;
        if (ApiKeys.TryRead(Request, out var key))
        {
            if (throttle.IsBlocked(address, out var wait))
            {
                _retryAfter = wait;
                return Task.FromResult(AuthenticateResult.Fail("Too many failed admin-key attempts from this address."));
            }

            if (admin.IsAdminKey(key))
            {
                throttle.RecordSuccess(address);
                return Task.FromResult(Success("key"));
            }

            throttle.RecordFailure(address);
            return Task.FromResult(AuthenticateResult.Fail("Invalid admin key."));
        }

        // The dashboard only reads; limiting the cookie to safe methods keeps it useless for cross-site writes even
        // where SameSite=Strict is not honoured.
        if (Options.AllowDashboardSession && (HttpMethods.IsGet(Request.Method) || HttpMethods.IsHead(Request.Method)) && sessions.IsValid(Request))
        {
            return Task.FromResult(Success("dashboard-session"));
        }

        return Task.FromResult(AuthenticateResult.NoResult());
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (_retryAfter is { } wait)
        {
            Response.Headers.RetryAfter = RetryAfterSeconds(wait);
            return AdminProblems.Create(StatusCodes.Status429TooManyRequests, "too_many_attempts",
                "Too many failed admin-key attempts from this address; wait for the time in Retry-After.").ExecuteAsync(Context);
        }

        Response.Headers.WWWAuthenticate = "Bearer";
        return AdminProblems.Create(StatusCodes.Status401Unauthorized, "invalid_admin_key",
            "This endpoint needs the admin key: 'Authorization: Bearer <TOKENGATEWAY_ADMIN_KEY>'.").ExecuteAsync(Context);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        AdminProblems.Create(StatusCodes.Status403Forbidden, "forbidden", "The admin credentials do not allow this request.").ExecuteAsync(Context);

    internal static string RetryAfterSeconds(TimeSpan wait) =>
        Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    private AuthenticateResult Success(string method)
    {
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "admin"), new Claim(ClaimTypes.AuthenticationMethod, method)], Scheme.Name);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }
}
