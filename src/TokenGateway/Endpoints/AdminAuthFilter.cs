using TokenGateway.Auth;
using TokenGateway.Dashboard;

namespace TokenGateway.Endpoints;

/// <summary>
/// Requires the admin key (<c>Authorization: Bearer</c> or <c>x-api-key</c>) on every admin endpoint; read-only
/// requests (GET/HEAD) may instead carry the dashboard session cookie.
/// </summary>
internal sealed class AdminAuthFilter(AdminKeyService admin, DashboardSessions sessions) : IEndpointFilter
{
    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var request = context.HttpContext.Request;
        if (ApiKeys.TryRead(request, out var key) && admin.IsAdminKey(key))
        {
            return next(context);
        }

        // The dashboard only reads; limiting the cookie to safe methods keeps it useless for cross-site writes
        // even where SameSite=Strict is not honoured.
        if ((HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)) && sessions.IsValid(request))
        {
            return next(context);
        }

        return ValueTask.FromResult<object?>(AdminProblems.Create(401, "invalid_admin_key",
            "This endpoint needs the admin key: 'Authorization: Bearer <TOKENGATEWAY_ADMIN_KEY>'."));
    }
}
