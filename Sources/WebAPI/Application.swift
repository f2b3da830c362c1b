import Foundation
import Hummingbird
import Logging
import Pipeline

/// Builds the HTTP application: one controller per route family, A1111's error/timing middleware and, with
/// `--api-auth`, HTTP Basic authentication.
public enum SDAPIServer {
    public static func makeRouter(state: ServerState, extensions: [any APIExtension] = []) -> Router<Context> {
        let router = Router(context: Context.self)
        let table = RouteTable()
        router.add(middleware: A1111Middleware(routes: table, logger: state.logger))
        router.add(middleware: BasicAuthMiddleware(credentials: state.config.apiAuth, routes: table))
        let routes = Routes(router: router, table: table)
        InfoController(state: state).register(routes)
        ModelsController(state: state).register(routes)
        OptionsController(state: state).register(routes)
        ProgressController(state: state, encodePreview: { try? ImageCodec.encodePNG($0, parameters: nil) }).register(routes)
        PNGInfoController(state: state).register(routes)
        SamplersController().register(routes)
        Txt2ImgController(state: state).register(routes)
        for ext in extensions {
            ext.scripts.forEach(state.scripts.register)
            ext.register(RouteRegistrar(routes: routes, state: state))
        }
        OpenAPIController(table: table, version: state.config.version).register(routes)
        return router
    }

    public static func makeApplication(state: ServerState, extensions: [any APIExtension] = []) -> some ApplicationProtocol {
        Application(
            router: makeRouter(state: state, extensions: extensions),
            configuration: .init(address: .hostname(state.config.host, port: state.config.port), serverName: nil),
            logger: state.logger
        )
    }
}
