using TokenGateway.Hosting;

var app = GatewayApplication.Build(GatewayApplication.CreateBuilder(args));
app.Run();

/// <summary>Entry point marker for WebApplicationFactory.</summary>
public partial class Program;
