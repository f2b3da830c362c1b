import WebAPI
