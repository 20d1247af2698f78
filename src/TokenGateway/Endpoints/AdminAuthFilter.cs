using TokenGateway.Auth;

namespace TokenGateway.Endpoints;

/// <summary>Requires the admin key (<c>Authorization: Bearer</c> or <c>x-api-key</c>) on every admin endpoint.</summary>
internal sealed class AdminAuthFilter(AdminKeyService admin) : IEndpointFilter
{
    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var request = context.HttpContext.Request;
        if (ApiKeys.TryRead(request, out var key) && admin.IsAdminKey(key))
        {
            return next(context);
        }

        return ValueTask.FromResult<object?>(AdminProblems.Create(401, "invalid_admin_key",
            "This endpoint needs the admin key: 'Authorization: Bearer <TOKENGATEWAY_ADMIN_KEY>'."));
    }
}
