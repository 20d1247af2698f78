namespace TokenGateway.Simulator;

/// <summary>
/// Standalone simulator host: <c>dotnet run --project src/TokenGateway.Simulator --urls http://127.0.0.1:9000</c>.
/// <c>SIMULATOR_API_KEY</c> sets <see cref="SimulatorOptions.RequiredApiKey"/>.
/// </summary>
internal static class SimulatorProgram
{
    public static void Main(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddLlmSimulator(options =>
        {
            if (Environment.GetEnvironmentVariable("SIMULATOR_API_KEY") is { Length: > 0 } key)
            {
                options.RequiredApiKey = key;
            }
        });

        var app = builder.Build();
        app.MapGet("/healthz", () => "ok");
        app.MapLlmSimulator();
        app.Run();
    }
}
