using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using TokenGateway.Hosting;

namespace TokenGateway.IntegrationTests.Auth;

/// <summary>
/// Which requests run <c>AuthorizationMiddleware</c> (issue #17): endpoints carrying authorization metadata do (the
/// endpoint middleware refuses them otherwise); endpoints without it (the LLM routes) and unmatched requests skip it.
/// </summary>
public sealed class AuthorizationBranchTests
{
    [Fact]
    public void EndpointWithAuthorizeData_NeedsTheMiddleware() =>
        Assert.True(GatewayApplication.HasAuthorizationMetadata(ContextFor(new AuthorizeAttribute("admin"))));

    [Fact]
    public void EndpointWithAPolicyObject_NeedsTheMiddleware() =>
        Assert.True(GatewayApplication.HasAuthorizationMetadata(ContextFor(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build())));

    [Fact]
    public void EndpointWithoutAuthorizationMetadata_SkipsTheMiddleware() =>
        Assert.False(GatewayApplication.HasAuthorizationMetadata(ContextFor(new object())));

    [Fact]
    public void RequestWithoutEndpoint_SkipsTheMiddleware() =>
        Assert.False(GatewayApplication.HasAuthorizationMetadata(new DefaultHttpContext()));

    private static DefaultHttpContext ContextFor(params object[] metadata)
    {
        var context = new DefaultHttpContext();
        context.SetEndpoint(new Endpoint(static _ => Task.CompletedTask, new EndpointMetadataCollection(metadata), "test"));
        return context;
    }
}
