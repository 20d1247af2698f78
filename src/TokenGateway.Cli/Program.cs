using TokenGateway.Cli;

return args.Length > 0 && args[0] == "savings"
    ? SavingsCommand.Run(args[1..], Console.Out, Console.Error)
    : Usage();

static int Usage()
{
    Console.Error.WriteLine(SavingsCommand.UsageText);
    return 2;
}
