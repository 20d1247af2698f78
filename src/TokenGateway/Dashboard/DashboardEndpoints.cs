using System.Collections.Frozen;
using System.Net;
using System.Reflection;
using TokenGateway.Auth;
using TokenGateway.Dashboard;
using TokenGateway.Hosting;

namespace Microsoft.AspNetCore.Builder;

/// <summary>
/// <c>/dashboard</c>: a self-contained ops page (HTML, CSS and hand-written SVG charts embedded in the assembly; no
/// CDN, no external request) that reads the admin API with a session cookie obtained by logging in with the admin key.
/// </summary>
public static class DashboardEndpoints
{
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    private static readonly FrozenDictionary<string, (byte[] Body, string ContentType)> _assets = LoadAssets();

    /// <summary>Maps the dashboard page, its assets, login and logout.</summary>
    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // The page checks the session itself (no session → redirect to the login page); the admin data it shows comes
        // from the admin API, which checks the session again.
        app.MapGet("/dashboard", (HttpContext context, DashboardSessions sessions) =>
            sessions.IsValid(context.Request) ? Page(context, "index.html", 200) : Results.Redirect("/dashboard/login"));
        app.MapGet("/dashboard/insights", (HttpContext context, DashboardSessions sessions) =>
            sessions.IsValid(context.Request) ? Page(context, "insights.html", 200) : Results.Redirect("/dashboard/login"));
        app.MapGet("/dashboard/login", (HttpContext context) => Page(context, "login.html", 200)).AllowAnonymous();
        app.MapPost("/dashboard/login", LoginAsync).DisableAntiforgery().AllowAnonymous();
        app.MapPost("/dashboard/logout", (HttpContext context) =>
        {
            context.Response.Cookies.Delete(DashboardSessions.CookieName, DashboardSessions.CookieOptions(null));
            return Results.Redirect("/dashboard/login", permanent: false, preserveMethod: false);
        }).DisableAntiforgery().AllowAnonymous(); // only clears the caller's own cookie
        app.MapGet("/dashboard/assets/{name}", (HttpContext context, string name) =>
        {
            if (!_assets.TryGetValue(name, out var asset) || name.EndsWith(".html", StringComparison.Ordinal))
            {
                return Results.NotFound();
            }

            SecurityHeaders(context);
            context.Response.Headers.CacheControl = "no-cache";
            return Results.Bytes(asset.Body, asset.ContentType);
        }).AllowAnonymous();
        return app;
    }

    private static async Task<IResult> LoginAsync(HttpContext context, AdminKeyService admin, DashboardSessions sessions, AdminLoginThrottle throttle, TimeProvider time)
    {
        // Checked before a byte of the form is read: a blocked address cannot even submit a guess.
        var address = context.Connection.RemoteIpAddress;
        if (throttle.IsBlocked(address, out var wait))
        {
            return TooManyAttempts(context, wait);
        }

        if (!context.Request.HasFormContentType)
        {
            return Results.StatusCode(StatusCodes.Status415UnsupportedMediaType);
        }

        // The form holds one key: anything over a few KiB is refused (413) instead of buffered.
        RequestBodyLimits.SetLimit(context, RequestBodyLimits.LoginFormMaxBytes);
        if (context.Request.ContentLength > RequestBodyLimits.LoginFormMaxBytes)
        {
            return FormTooLarge(context);
        }

        IFormCollection form;
        try
        {
            form = await context.Request.ReadFormAsync(context.RequestAborted);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return FormTooLarge(context);
        }
        catch (InvalidDataException)
        {
            return FormTooLarge(context); // FormOptions limits (value or key count/length)
        }

        var key = form["key"].ToString().Trim();
        if (key.Length == 0)
        {
            return Page(context, "login.html", StatusCodes.Status401Unauthorized, "The admin key is not valid.");
        }

        if (!admin.IsAdminKey(key) || sessions.Issue() is not { } token)
        {
            var blocked = throttle.RecordFailure(address);
            if (blocked > TimeSpan.Zero)
            {
                return TooManyAttempts(context, blocked);
            }

            return Page(context, "login.html", StatusCodes.Status401Unauthorized, "The admin key is not valid.");
        }

        throttle.RecordSuccess(address);
        context.Response.Cookies.Append(DashboardSessions.CookieName, token,
            DashboardSessions.CookieOptions(time.GetUtcNow() + DashboardSessions.Lifetime));
        return Results.Redirect("/dashboard", permanent: false, preserveMethod: false);
    }

    private static IResult TooManyAttempts(HttpContext context, TimeSpan wait)
    {
        var seconds = AdminKeyAuthenticationHandler.RetryAfterSeconds(wait);
        context.Response.Headers.RetryAfter = seconds;
        return Page(context, "login.html", StatusCodes.Status429TooManyRequests,
            $"Too many failed attempts from your address. Try again in {seconds} s.");
    }

    private static IResult FormTooLarge(HttpContext context)
    {
        context.Response.Headers.Connection = "close"; // the rest of the body is not read
        return Page(context, "login.html", StatusCodes.Status413PayloadTooLarge, "The login form is too large.");
    }

    private static IResult Page(HttpContext context, string name, int status, string? error = null)
    {
        SecurityHeaders(context);
        context.Response.Headers.CacheControl = "no-store";
        var html = System.Text.Encoding.UTF8.GetString(_assets[name].Body)
            .Replace("{{error}}", error is null ? "" : WebUtility.HtmlEncode(error), StringComparison.Ordinal);
        return Results.Content(html, "text/html; charset=utf-8", System.Text.Encoding.UTF8, status);
    }

    private static void SecurityHeaders(HttpContext context)
    {
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
    }

    private static FrozenDictionary<string, (byte[], string)> LoadAssets()
    {
        const string prefix = "TokenGateway.Dashboard.Assets.";
        var assembly = typeof(DashboardSessions).Assembly;
        var assets = new Dictionary<string, (byte[], string)>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!; // listed by the same assembly
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var name = resource[prefix.Length..];
            var type = Path.GetExtension(name) switch
            {
                ".js" => "text/javascript; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                ".svg" => "image/svg+xml",
                _ => "text/html; charset=utf-8",
            };
            assets[name] = (buffer.ToArray(), type);
        }

        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
