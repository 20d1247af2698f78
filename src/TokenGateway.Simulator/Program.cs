namespace TokenGateway.Simulator;

internal static class SimulatorProgram
{
    public static void Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        var app = builder.Build();
        app.MapGet("/healthz", () => "ok");
        app.Run();
    }
}
