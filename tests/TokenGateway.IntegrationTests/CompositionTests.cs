using Microsoft.Extensions.DependencyInjection;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Core.Teams;
using TokenGateway.Hosting;

namespace TokenGateway.IntegrationTests;

/// <summary>The composition root registers each store and Core service once (issue #11).</summary>
public sealed class CompositionTests
{
    [Theory]
    [InlineData(typeof(IPolicyStore))] // GatewayApplication used to register a second SqlitePolicyStore beside the storage one
    [InlineData(typeof(ISchemaRegistry))]
    [InlineData(typeof(ITeamStore))]
    [InlineData(typeof(IPolicyProvider))]
    [InlineData(typeof(ModelCatalog))]
    [InlineData(typeof(CostCalculator))]
    [InlineData(typeof(AdmissionController))]
    public void CreateBuilder_RegistersServiceExactlyOnce(Type service)
    {
        var builder = GatewayApplication.CreateBuilder([]);

        Assert.Single(builder.Services, d => d.ServiceType == service);
    }
}
