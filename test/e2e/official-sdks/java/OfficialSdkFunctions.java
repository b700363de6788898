// Functions written with the official StateFun Java SDK (statefun-sdk-java 3.3.0, from Maven
// Central) for Eddy's end-to-end tests; scripts/ensure-official-sdks.sh compiles them.
//
//   java -cp <sdk jars>:<classes> OfficialSdkFunctions [PORT]
//
// Serves java/greeter and java/counter with the SDK's RequestReplyHandler behind the JDK's own
// HTTP server, on 127.0.0.1:PORT (0 or absent: any free port), and prints the port on stdout as
// its first line. Stops when stdin closes, so it never outlives the test that started it, or on
// SIGTERM.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import org.apache.flink.statefun.sdk.java.Context;
import org.apache.flink.statefun.sdk.java.StatefulFunctionSpec;
import org.apache.flink.statefun.sdk.java.StatefulFunctions;
import org.apache.flink.statefun.sdk.java.TypeName;
import org.apache.flink.statefun.sdk.java.ValueSpec;
import org.apache.flink.statefun.sdk.java.handler.RequestReplyHandler;
import org.apache.flink.statefun.sdk.java.message.Message;
import org.apache.flink.statefun.sdk.java.message.MessageBuilder;
import org.apache.flink.statefun.sdk.java.slice.Slice;
import org.apache.flink.statefun.sdk.java.slice.Slices;

public final class OfficialSdkFunctions {
  private static final ValueSpec<Integer> VISITS = ValueSpec.named("visits").withIntType();
  private static final ValueSpec<Integer> COUNT = ValueSpec.named("count").withIntType();

  /** Replies to its caller "Welcome <id>!" on the first visit, "Welcome back <id>!" after. */
  static CompletableFuture<Void> greeter(Context context, Message message) {
    int visits = context.storage().get(VISITS).orElse(0) + 1;
    context.storage().set(VISITS, visits);
    String id = context.self().id();
    String text = visits == 1 ? "Welcome " + id + "!" : "Welcome back " + id + "!";
    context.caller().ifPresent(caller -> context.send(MessageBuilder.forAddress(caller).withValue(text).build()));
    return context.done();
  }

  /** Counts its messages and replies the new count to its caller, as an int. */
  static CompletableFuture<Void> counter(Context context, Message message) {
    int count = context.storage().get(COUNT).orElse(0) + 1;
    context.storage().set(COUNT, count);
    context.caller().ifPresent(caller -> context.send(MessageBuilder.forAddress(caller).withValue(count).build()));
    return context.done();
  }

  public static void main(String[] args) throws IOException {
    int port = args.length > 0 ? Integer.parseInt(args[0]) : 0;
    StatefulFunctions functions = new StatefulFunctions();
    functions.withStatefulFunction(
        StatefulFunctionSpec.builder(TypeName.typeNameFromString("java/greeter"))
            .withValueSpec(VISITS)
            .withSupplier(() -> OfficialSdkFunctions::greeter));
    functions.withStatefulFunction(
        StatefulFunctionSpec.builder(TypeName.typeNameFromString("java/counter"))
            .withValueSpec(COUNT)
            .withSupplier(() -> OfficialSdkFunctions::counter));
    RequestReplyHandler handler = functions.requestReplyHandler();

    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 1024);
    server.createContext("/", exchange -> serve(handler, exchange));
    // Eddy sends batches for many addresses at once: a thread each, so none waits for another.
    server.setExecutor(Executors.newCachedThreadPool());
    server.start();
    System.out.println(server.getAddress().getPort());
    System.out.flush();

    Thread stdinWatcher = new Thread(() -> {
      try {
        System.in.transferTo(OutputStream.nullOutputStream());
      } catch (IOException ignored) {
        // a broken stdin means the same as a closed one
      }
      System.exit(0);
    });
    stdinWatcher.setDaemon(true);
    stdinWatcher.start();
  }

  /** One ToFunction in, its FromFunction out (200); a failure of the SDK or a function is a 500 with the reason. */
  private static void serve(RequestReplyHandler handler, HttpExchange exchange) throws IOException {
    try {
      if (!exchange.getRequestMethod().equals("POST")) {
        respond(exchange, 405, "text/plain; charset=utf-8", "expected POST".getBytes(StandardCharsets.UTF_8));
        return;
      }
      byte[] request;
      try (InputStream body = exchange.getRequestBody()) {
        request = body.readAllBytes();
      }
      byte[] reply;
      try {
        Slice response = handler.handle(Slices.wrap(request)).join();
        reply = response.toByteArray();
      } catch (RuntimeException error) {
        Throwable cause = error.getCause() == null ? error : error.getCause();
        cause.printStackTrace();
        respond(exchange, 500, "text/plain; charset=utf-8", String.valueOf(cause).getBytes(StandardCharsets.UTF_8));
        return;
      }
      respond(exchange, 200, "application/octet-stream", reply);
    } finally {
      exchange.close();
    }
  }

  private static void respond(HttpExchange exchange, int status, String contentType, byte[] body) throws IOException {
    exchange.getResponseHeaders().set("Content-Type", contentType);
    // A length of 0 would mean "chunked"; -1 is an empty body.
    exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(body);
    }
  }
}
